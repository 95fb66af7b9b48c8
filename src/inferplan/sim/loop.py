"""The event loop: arrivals (already sorted) merged with a heap of step completions.

Heap key: ``(time, seq)`` with ``seq`` from this loop's own counter, so ties break
the same way every run. At equal times a step completion is handled before an
arrival (tokens produced at t are out before a request arriving at t is routed),
and arrivals at equal times keep trace order. The clock never goes back.
"""

from __future__ import annotations

import heapq
import itertools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from inferplan.perf.deployment import Deployment
from inferplan.sim.metrics import LogHistogram
from inferplan.sim.policies.base import EnginePolicy
from inferplan.sim.replica import ArrivalFeed, Replica
from inferplan.sim.routers import LeastKV, Router, get_router
from inferplan.sim.state import PENDING, REJECTED, WAITING, RequestTable
from inferplan.workload.request import Workload

Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True, eq=False)
class SimResult:
    workload: Workload
    table: RequestTable
    replicas: tuple[Replica, ...]
    itl: LogHistogram
    makespan_s: float
    wall_s: float
    num_steps: int
    router: str
    policy: str
    num_events: int = 0  # arrivals, KV transfers and step (or leap) completions handled by the loop


def simulate(
    wl: Workload,
    deployments: Sequence[Deployment],
    policy: EnginePolicy,
    *,
    router: str | Router = "round-robin",
    seed: int = 0,
    max_waiting: int = 0,
    priority: bool = False,
    progress: Progress | None = None,
    check_invariants: bool = False,
    leap: bool = True,
    prefill: Sequence[Deployment] = (),
    kv_link_gb_s: float | None = None,
    uptime: Sequence[Sequence[tuple[float, float]]] | None = None,
    aggregated: Sequence[Deployment] = (),
    handoff: Sequence[Sequence[int]] | None = None,
) -> SimResult:
    """Run the workload through replicas (one per deployment) until every request finished or was rejected.

    With ``prefill`` deployments the cluster is disaggregated (DistServe): arrivals go to the
    prefill pool, which emits the first token; the prompt's KV then travels to a decode replica
    (``deployments``) over the link and decoding continues there.

    ``uptime`` (autoscaling) gives, per arrival-facing replica, the intervals in which it
    accepts new requests; outside them it only finishes what it has.

    A fleet can mix both kinds: ``aggregated`` replicas take arrivals beside the prefill pool
    and serve them whole. ``handoff`` gives, per prefill replica, the decode replicas (indices
    into ``deployments``) its prompts may go to (default: all); the least KV-loaded is chosen.
    Replicas are numbered prefill first, then aggregated, then decode.
    """
    wall0 = time.perf_counter()
    table = RequestTable(wl)
    itl = LogHistogram()
    bucket_s = max(1.0, wl.duration_s / 1000.0)
    if aggregated and not prefill:
        raise ValueError("aggregated replicas beside a prefill pool need a prefill pool; pass them as deployments")
    roles = (["prefill"] * len(prefill) + ["both"] * len(aggregated)
             + (["decode"] if prefill else ["both"]) * len(deployments))
    route = get_router(router, np.random.default_rng(seed), wl)
    # Where no router reads a replica's load (one replica, or a router that assigns arrivals up front),
    # each replica is fed its own arrivals: its leaps run through finishes and may take arrivals in.
    multi = not prefill and uptime is None and len(roles) > 1
    assigned = route.assign(len(wl.arrival_s), len(roles)) if multi else None
    fed = not prefill and (len(roles) == 1 or assigned is not None)
    replicas = tuple(
        Replica(i, dep, policy, table, itl=itl, bucket_s=bucket_s, max_waiting=max_waiting, priority=priority,
                leap=leap, solo=fed, role=role)
        for i, (dep, role) in enumerate(zip([*prefill, *aggregated, *deployments], roles, strict=True))
    )
    n_front = len(prefill) + len(aggregated)
    front = replicas[:n_front] if prefill else replicas  # where arrivals go
    back = replicas[n_front:] if prefill else ()
    groups = [[back[j] for j in g] for g in handoff] if handoff is not None else [list(back)] * len(prefill)
    if len(groups) != len(prefill) or any(not g for g in groups):
        raise ValueError("handoff needs a non-empty list of decode replicas for every prefill replica")
    # decode on another device type runs on another machine: the KV goes over the network
    across = [{r.dep.device.name for r in g} != {p.device.name} for p, g in zip(prefill, groups, strict=True)]
    changes = _uptime_changes(uptime, len(front)) if uptime is not None else []
    accepting = list(front)
    next_change = 0
    to_decode = LeastKV()
    transfers: list[tuple[float, int, int]] = []  # (KV arrival time, seq, request)
    heap: list[tuple[float, int, int]] = []
    seq = itertools.count()
    arrivals = wl.arrival_s.tolist()
    n = len(arrivals)
    owner: list[int] = []  # each arrival's replica, when the router assigned them up front
    if fed and len(replicas) == 1:
        replicas[0].feed = ArrivalFeed(arrivals)
    elif assigned is not None and n:
        owner = assigned.tolist()
        for rep in replicas:
            mine = (assigned == rep.index).nonzero()[0]
            rep.feed = ArrivalFeed([arrivals[j] for j in mine.tolist()], mine.tolist())
    status = table.status
    i = 0  # the next arrival, in trace order, that no replica has taken in
    now = 0.0
    steps = events = 0
    report_every = max(1, n // 200)

    step_end = [float("inf")] * len(replicas)  # when each busy replica's running step (or leap) ends

    def start(rep: Replica) -> None:
        feed = rep.feed
        if feed is not None:
            horizon = feed.next_time(status)
        else:
            horizon = arrivals[i] if i < n else float("inf")
        if transfers and transfers[0][0] < horizon:
            horizon = transfers[0][0]
        if rep.state.role == "decode":  # a prefill step ending sooner may hand off a prompt sooner
            for k in range(len(prefill)):
                if step_end[k] < horizon:
                    horizon = step_end[k]
        end = rep.start_step(now, horizon)
        if end is not None:
            heapq.heappush(heap, (end, next(seq), rep.index))
            step_end[rep.index] = end

    next_report = report_every
    while True:
        while fed and i < n and status[i] != PENDING:  # a replica took it in inside a leap
            i += 1
        if not (i < n or heap or transfers):
            break
        if progress is not None and i >= next_report:
            progress(i, n)
            next_report = i + report_every
        t_arrival = arrivals[i] if i < n else float("inf")
        t_transfer = transfers[0][0] if transfers else float("inf")
        if heap and heap[0][0] <= t_arrival and heap[0][0] <= t_transfer:
            t, _, r = heapq.heappop(heap)
            assert t >= now, "clock went back"
            now = t
            rep = replicas[r]
            events += 1
            step_end[r] = float("inf")
            steps += rep.leap.steps if rep.leap is not None else 1
            rep.finish_step(now)
            if check_invariants:
                _check(rep)
            for rid, t_first in rep.handoffs:
                done = t_first + kv_transfer_s(rep.dep, int(table.input[rid]), kv_link_gb_s,
                                               across_nodes=across[rep.index])
                heapq.heappush(transfers, (done, next(seq), rid))
            rep.handoffs.clear()
            start(rep)
            continue
        if t_transfer <= t_arrival:  # a prompt's KV reached the decode pool
            t, _, rid = heapq.heappop(transfers)
            assert t >= now, "clock went back"
            now = t
            events += 1
            group = groups[int(table.replica[rid])]  # still the prefill replica's index
            target = group[to_decode.choose(rid, group)]
            table.replica[rid] = target.index
            table.kv_ready[rid] = table.input[rid]
            _offer(target, rid, table, start)
            continue
        assert t_arrival >= now, "clock went back"
        now = t_arrival
        rid = i
        i += 1
        events += 1
        while next_change < len(changes) and changes[next_change][0] <= now:
            accepting = [front[k] for k in changes[next_change][1]] or list(front)
            next_change += 1
        target = replicas[owner[rid]] if owner else accepting[route.choose(rid, accepting)]
        table.replica[rid] = target.index
        _offer(target, rid, table, start, status=WAITING)
    if progress is not None:
        progress(n, n)
    return SimResult(wl, table, replicas, itl, now, time.perf_counter() - wall0, steps, route.name, policy.name,
                     events)


def _uptime_changes(uptime: Sequence[Sequence[tuple[float, float]]], count: int) -> list[tuple[float, list[int]]]:
    """Times at which the set of accepting replicas changes, with the set from then on."""
    if len(uptime) != count:
        raise ValueError(f"uptime lists {len(uptime)} replicas, the pool has {count}")
    times = sorted({t for spans in uptime for span in spans for t in span} | {0.0})
    return [(t, [k for k, spans in enumerate(uptime) if any(a <= t < b for a, b in spans)]) for t in times]


def kv_transfer_s(dep: Deployment, prompt_tokens: int, link_gb_s: float | None, *, across_nodes: bool = False) -> float:
    """Time to move a prompt's KV cache from a prefill to a decode replica.

    Default link: the device's intra-node link in one direction (prefill and decode in one
    node, as DistServe places them when it can), else its network link. ``across_nodes``
    (decode on another device type, so another machine): the network link.
    """
    dev = dep.device
    intra = dev.intra_node_link_gb_s / 2 if dev.intra_node_link_gb_s and not across_nodes else 0.0
    gb_s = link_gb_s or intra or dev.inter_node_link_gb_s
    kv_bytes = dep.model.kv_bytes_for_context(prompt_tokens, dep.kv.bytes_per_value)
    return kv_bytes / (max(gb_s, 1e-3) * 1e9 * dep.device_profile.link_efficiency) + dev.link_latency_us * 1e-6


def _check(rep: Replica) -> None:
    """Invariants after every step: KV within capacity, batch within limits."""
    st = rep.state
    st.pool.check()
    assert st.pool.num_used <= st.pool.num_blocks
    assert st.batch.n <= st.max_num_seqs
    held = int(st.batch.held[: st.batch.n].sum())
    assert held >= 0
    if not st.prefix_caching:
        assert held == st.pool.num_used, (held, st.pool.num_used)


def _offer(target: Replica, rid: int, table: RequestTable, start: Callable[[Replica], None], *,
           status: int | None = None) -> None:
    """Reject ``rid`` with the replica's reason, or queue it there (as ``status``, if given) and start
    the replica if it is idle. An arrival and a prompt whose KV reached its decode replica both land here."""
    reason = target.reject_reason(rid)
    if reason:
        table.status[rid] = REJECTED
        table.reject_reason[rid] = reason
        return
    if status is not None:
        table.status[rid] = status
    target.enqueue(rid)
    if not target.busy:
        start(target)
