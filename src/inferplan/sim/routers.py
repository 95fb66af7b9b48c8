"""Routers: which replica gets an arriving request. Each is a small class chosen by name."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np

from inferplan.errors import unknown_name
from inferplan.sim.replica import Replica
from inferplan.workload.request import Workload


class Router(Protocol):
    """Picks a replica per arrival (``choose``, given the replicas that accept arrivals now).

    ``assign`` gives every arrival's replica up front when the choice never reads replica state
    (``RoundRobin``), and None otherwise (``ReadsLoad``). With an assignment the simulator lets
    each replica take its own arrivals in inside its leaps, which is much faster for big fleets.
    """

    name: str

    def choose(self, rid: int, replicas: Sequence[Replica]) -> int: ...

    def assign(self, count: int, num_replicas: int) -> np.ndarray | None: ...


class ReadsLoad:
    """Base of the routers whose choice reads replica state: nothing can be assigned up front."""

    def assign(self, count: int, num_replicas: int) -> None:
        return None


def _least_outstanding(replicas: Sequence[Replica]) -> int:
    """Fewest running + waiting; ties go to the lowest index (deterministic)."""
    best, best_load = 0, replicas[0].num_outstanding
    for i in range(1, len(replicas)):
        load = replicas[i].num_outstanding
        if load < best_load:
            best, best_load = i, load
    return best


class RoundRobin:
    name = "round-robin"

    def __init__(self) -> None:
        self._next = 0

    def choose(self, rid: int, replicas: Sequence[Replica]) -> int:
        i = self._next % len(replicas)
        self._next += 1
        return i

    def assign(self, count: int, num_replicas: int) -> np.ndarray:
        """The replica of each of ``count`` arrivals, decided up front: the choice never reads a replica's
        state, so the simulator may let each replica take its own arrivals in (see ``ArrivalFeed``)."""
        return np.arange(self._next, self._next + count) % num_replicas


class LeastOutstanding(ReadsLoad):
    name = "least-outstanding"

    def choose(self, rid: int, replicas: Sequence[Replica]) -> int:
        return _least_outstanding(replicas)


class LeastKV(ReadsLoad):
    """Lowest KV-cache use, counting the blocks its waiting requests will need; ties by queue length."""

    name = "least-kv"

    def choose(self, rid: int, replicas: Sequence[Replica]) -> int:
        keys = [(r.kv_usage + len(r.state.waiting) / max(r.state.max_num_seqs, 1), r.num_outstanding, i)
                for i, r in enumerate(replicas)]
        return min(keys)[2]


class PowerOfTwo(ReadsLoad):
    """Two random replicas, the less loaded wins (Mitzenmacher's power of two choices)."""

    name = "power-of-two"

    def __init__(self, rng: np.random.Generator) -> None:
        self._rng = rng

    def choose(self, rid: int, replicas: Sequence[Replica]) -> int:
        if len(replicas) == 1:
            return 0
        a, b = self._rng.choice(len(replicas), size=2, replace=False)
        return int(a) if replicas[a].num_outstanding <= replicas[b].num_outstanding else int(b)


class SessionAffinity(ReadsLoad):
    """Same session (or shared prefix) -> same replica, so its prefix cache is reused; others least-outstanding."""

    name = "session-affinity"

    def __init__(self, wl: Workload) -> None:
        self._wl = wl

    def choose(self, rid: int, replicas: Sequence[Replica]) -> int:
        wl = self._wl
        key = int(wl.session_id[rid])
        if key < 0:
            key = int(wl.prefix_group[rid])
        if key < 0 and wl.prefix_chain is not None and wl.prefix_chain[rid]:
            key = wl.prefix_chain[rid][0]
        if key < 0:
            return _least_outstanding(replicas)
        return (key * 2654435761) % (1 << 32) % len(replicas)


class CacheAware(ReadsLoad):
    """sglang-router's cache_aware policy (sgl-router/src/policies/cache_aware.rs): while loads are balanced,
    the replica whose tree of routed prompts shares the longest prefix with this one if it covers more than
    ``cache_threshold`` of the prompt, else the replica with the smallest tree; when the busiest replica has
    more than ``balance_abs`` more requests than the idlest and over ``balance_rel`` times as many, the idlest.
    Defaults are sglang_router/router_args.py's (0.3, 64, 1.5). The tree holds each prompt's content as its
    prefix chain names it (``Workload.prefix_chain``, else its shared-prefix group), chunk by chunk; it is
    never evicted (the router's own LRU trims it only past 2^26 characters)."""

    name = "cache-aware"

    def __init__(self, wl: Workload, cache_threshold: float = 0.3, balance_abs: int = 64,
                 balance_rel: float = 1.5) -> None:
        self._wl = wl
        self._threshold, self._abs, self._rel = cache_threshold, balance_abs, balance_rel
        self._trees: dict[int, set[int]] = {}  # replica index -> content ids routed there

    def choose(self, rid: int, replicas: Sequence[Replica]) -> int:
        loads = [r.num_outstanding for r in replicas]
        chunks = self._content(rid)
        trees = [self._trees.setdefault(r.index, set()) for r in replicas]
        if max(loads) - min(loads) > self._abs and max(loads) > min(loads) * self._rel:
            pick = loads.index(min(loads))
        else:
            matched = [_leading(chunks, tree) for tree in trees]
            best = max(range(len(replicas)), key=lambda i: (matched[i], -i))
            tokens = self._chunk_tokens * matched[best]
            if tokens > self._threshold * int(self._wl.input_tokens[rid]):
                pick = best
            else:
                pick = min(range(len(replicas)), key=lambda i: (len(trees[i]), i))
        trees[pick].update(chunks)
        return pick

    @property
    def _chunk_tokens(self) -> int:
        return self._wl.chain_block_tokens

    def _content(self, rid: int) -> tuple[int, ...]:
        """The prompt's content ids, one per full chunk, as far as the workload names them."""
        wl, size = self._wl, self._wl.chain_block_tokens
        prompt_chunks = int(wl.input_tokens[rid]) // size
        if wl.prefix_chain is not None:
            return wl.prefix_chain[rid][:prompt_chunks]
        group = int(wl.prefix_group[rid])
        if group < 0:
            return ()
        return tuple(-(group * 1_000_003 + j + 1) for j in range(int(wl.prefix_tokens[rid]) // size))


class PrecisePrefix(ReadsLoad):
    """llm-d's precise prefix-cache routing: each replica's resident KV blocks are known exactly (vLLM publishes
    KV-cache events; here the router reads the block pool), and a replica scores ``prefix_weight`` x the
    share of the prompt's blocks it holds + ``kv_weight`` x (1 - KV usage) + ``queue_weight`` x its min-max
    normalised waiting-queue score; the highest score wins, ties to the first. Weights as the llm-d-kv-cache
    README's EndpointPickerConfig example sets them (precise-prefix-cache-scorer 2, kv-cache-utilization-scorer
    1, queue-scorer 1). Needs prefix caching on the replicas: without it no block is resident."""

    name = "precise-prefix"

    def __init__(self, prefix_weight: float = 2.0, kv_weight: float = 1.0, queue_weight: float = 1.0) -> None:
        self._weights = (prefix_weight, kv_weight, queue_weight)

    def choose(self, rid: int, replicas: Sequence[Replica]) -> int:
        wp, wk, wq = self._weights
        queues = [len(r.state.waiting) for r in replicas]
        lo, hi = min(queues), max(queues)
        best, pick = -1.0, 0
        for i, r in enumerate(replicas):
            held, blocks = r.resident_prefix(rid)
            resident = held / blocks if blocks else 0.0
            queue = 1.0 if hi == lo else (hi - queues[i]) / (hi - lo)
            score = wp * resident + wk * (1.0 - r.kv_usage) + wq * queue
            if score > best:
                best, pick = score, i
        return pick


def _leading(chunks: tuple[int, ...], tree: set[int]) -> int:
    """How many of the leading chunks the tree holds (ids name whole prefixes, so this is the prefix match)."""
    k = 0
    for c in chunks:
        if c not in tree:
            break
        k += 1
    return k


class PlannedRouter(ReadsLoad):
    """Sends each request's size bucket to replica types in the planned shares (smooth weighted round-robin),
    then to the least-loaded replica of that type.

    ``replica_type`` is indexed by ``Replica.index``. ``shares`` is (buckets, types), or (windows,
    buckets, types) with ``window_of`` giving each request's window (autoscaling: the plan changes
    per window). Types with no replica among those offered (scaled in) get nothing; when none of a
    bucket's planned types is offered, the least-outstanding replica takes the request.
    """

    name = "planned"

    def __init__(self, bucket_of: np.ndarray, shares: np.ndarray, replica_type: Sequence[int],
                 window_of: np.ndarray | None = None) -> None:
        self._bucket_of = bucket_of
        self._shares = shares if shares.ndim == 3 else shares[None]
        self._window_of = window_of
        self._type = list(replica_type)
        self._credit = np.zeros(self._shares.shape[1:])

    def choose(self, rid: int, replicas: Sequence[Replica]) -> int:
        b = int(self._bucket_of[rid])
        w = int(self._window_of[rid]) if self._window_of is not None else 0
        kinds = [self._type[r.index] for r in replicas]
        offered = np.zeros(self._shares.shape[2], dtype=bool)
        offered[kinds] = True
        want = np.where(offered, self._shares[w, b], 0.0)
        total = want.sum()
        if total <= 0:
            return _least_outstanding(replicas)
        credit = self._credit[b]
        credit += want / total
        c = int(np.argmax(np.where(offered, credit, -np.inf)))
        credit[c] -= 1.0
        return min((i for i, k in enumerate(kinds) if k == c), key=lambda i: (replicas[i].num_outstanding, i))


ROUTERS: dict[str, Callable[[np.random.Generator, Workload], Router]] = {
    "round-robin": lambda rng, wl: RoundRobin(),
    "least-outstanding": lambda rng, wl: LeastOutstanding(),
    "least-kv": lambda rng, wl: LeastKV(),
    "power-of-two": lambda rng, wl: PowerOfTwo(rng),
    "session-affinity": lambda rng, wl: SessionAffinity(wl),
    "cache-aware": lambda rng, wl: CacheAware(wl),
    "precise-prefix": lambda rng, wl: PrecisePrefix(),
}


def get_router(name: str | Router, rng: np.random.Generator, wl: Workload) -> Router:
    if not isinstance(name, str):
        return name
    if name not in ROUTERS:
        raise unknown_name("router", name, ROUTERS, hint=f"choose one of {', '.join(ROUTERS)}")
    return ROUTERS[name](rng, wl)
