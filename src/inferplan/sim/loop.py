"""The event loop: arrivals (already sorted) merged with heaps of step ends and KV transfers.

One handler per kind of event. Heap keys are ``(time, seq)`` with ``seq`` from this
loop's own counter, so ties break the same way every run. At equal times a step end is
handled before a KV transfer, and both before an arrival (tokens produced at t are out
before a request arriving at t is routed); arrivals at equal times keep trace order. The
clock never goes back.
"""

from __future__ import annotations

import heapq
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from inferplan.perf.deployment import Deployment
from inferplan.perf.step_costs import StepCosts
from inferplan.sim.cluster import Cluster, SimOptions
from inferplan.sim.metrics import LogHistogram
from inferplan.sim.policies import get_policy
from inferplan.sim.policies.base import EnginePolicy
from inferplan.sim.reactive import STARTING, ReactiveScaler
from inferplan.sim.replica import ArrivalFeed, Replica
from inferplan.sim.routers import LeastKV, Router, get_router
from inferplan.sim.slo_watch import SloWatch
from inferplan.sim.state import PENDING, REJECTED, WAITING, RequestTable
from inferplan.workload.request import Workload

Progress = Callable[[int, int], None]
_DEFAULTS = SimOptions()
LOOKAHEAD = 2  # a routed replica's leap is priced up to the arrival this many times the front's size ahead
WATCH_EVERY = 16  # events between checks of ``SimOptions.stop_when_missed`` (a check: ~10 numpy calls)


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
    stopped: bool = False  # ended early: the SLOs of ``SimOptions.stop_when_missed`` were certainly missed
    scaler: ReactiveScaler | None = None  # the reactive autoscaler's record (billed seconds, replica timeline)
    gpu_of: tuple[int, ...] | None = None  # co-location: each replica's device (``Cluster.gpu_of``)


def simulate(
    wl: Workload,
    cluster: Cluster,
    policy: EnginePolicy | None = None,
    *,
    router: str | Router = "round-robin",
    seed: int = 0,
    options: SimOptions = _DEFAULTS,
    progress: Progress | None = None,
    costs: StepCosts | None = None,
) -> SimResult:
    """Run the workload through the cluster's replicas until every request finished or was rejected.

    ``policy`` None: each replica runs its engine's own scheduler (``Deployment.serving_engine``),
    so a fleet may mix engines. Arrivals are routed over the front replicas (``router``; those outside their ``uptime``
    take none). In a disaggregated cluster the prefill pool emits the first token; the
    prompt's KV then travels over the link to the least KV-loaded decode replica of its
    ``handoff`` group, and decoding continues there. ``costs``: step costs kept from earlier runs of the
    same deployments (a capacity search's probes) instead of fresh ones.
    """
    wall0 = time.perf_counter()
    loop = _Loop(wl, cluster, policy, get_router(router, np.random.default_rng(seed), wl), options, costs, seed)
    loop.run(progress)
    return SimResult(wl, loop.table, loop.replicas, loop.itl, loop.now, time.perf_counter() - wall0, loop.steps,
                     loop.route.name, "+".join(dict.fromkeys(r.policy.name for r in loop.replicas)), loop.events,
                     loop.stopped, loop.scaler, cluster.gpu_of)


class _Loop:
    """One simulation's events: arrivals (a sorted list), KV transfers and step ends (two heaps).

    The next event is the least ``(time, kind, seq)`` with kinds ordered step end, KV ready,
    arrival: tokens produced at t are out, and prompts that reached their decode replica at t
    are queued, before a request arriving at t is routed.
    """

    def __init__(self, wl: Workload, cluster: Cluster, policy: EnginePolicy | None, route: Router,
                 options: SimOptions, costs: StepCosts | None = None, seed: int = 0) -> None:
        self.table = table = RequestTable(wl)
        self.itl = LogHistogram()
        self.route = route
        self.check = options.check_invariants
        self.kv_link_gb_s = cluster.kv_link_gb_s
        roles = cluster.roles
        # Where no router reads a replica's load (one replica, or a router that assigns arrivals up front),
        # each replica is fed its own arrivals: its leaps run through finishes and may take arrivals in.
        shared = cluster.gpu_of is not None or cluster.serves is not None
        multi = (not cluster.prefill and cluster.uptime is None and not options.scaling and len(roles) > 1
                 and not shared)
        assigned = route.assign(len(wl.arrival_s), len(roles)) if multi else None
        self.fed = not cluster.prefill and not shared and (len(roles) == 1 or assigned is not None)
        bucket_s = max(1.0, wl.duration_s / 1000.0)
        gpus = cluster.gpu_of or ()
        shared_devices = {g for g in gpus if gpus.count(g) > 1}  # a replica alone on its device may still leap
        self.replicas = tuple(
            Replica(i, dep, policy or get_policy(dep.serving_engine.scheduler), table, itl=self.itl,
                    bucket_s=bucket_s, max_waiting=options.max_waiting, priority=options.priority,
                    leap=options.leap and not (gpus and gpus[i] in shared_devices), solo=self.fed, role=role,
                    offline_budget_s=options.offline_budget_s,
                    cost=costs.get(dep) if costs is not None else None)
            for i, (dep, role) in enumerate(zip(cluster.deployments, roles, strict=True))
        )
        table.replica_frontend_s = np.array([r.dep.device_profile.request_overhead_s for r in self.replicas])
        self.num_prefill = len(cluster.prefill)
        self.front = self.replicas[: len(cluster.front)]  # where arrivals go
        back = self.replicas[len(cluster.front) :]
        self.groups = [[back[j] for j in g] for g in cluster.handoff]
        self.across = [cluster.crosses_nodes(k) for k in range(self.num_prefill)]
        self.changes = cluster.uptime_changes()
        self.accepting = list(self.front)
        if cluster.serves is not None and len(cluster.serves) != len(wl.class_names):
            raise ValueError(f"serves lists {len(cluster.serves)} classes, the workload has {len(wl.class_names)}")
        self.pools = None if cluster.serves is None else [[self.front[k] for k in p] for p in cluster.serves]
        self.gpu_of = cluster.gpu_of
        self.gpu_owner: dict[int, int] = {}  # a shared device: the replica whose step runs on it
        self.gpu_queue: dict[int, list[Replica]] = {}  # ... and the replicas waiting for it, in turn
        self.scaler: ReactiveScaler | None = None
        if options.scaling:
            if cluster.prefill or cluster.uptime is not None or shared:
                raise ValueError("a reactive autoscaler scales aggregated replicas without fixed uptime")
            # cold starts drawn from their own stream: the router's draws stay as they were without scaling
            self.scaler = ReactiveScaler(options.scaling, len(self.front), np.random.default_rng([seed, 1]))
            self.accepting = [self.front[k] for k in self.scaler.up]
        self.next_change = 0
        self.to_decode = LeastKV()
        self.transfers: list[tuple[float, int, int]] = []  # (KV arrival time, seq, request)
        self.transfer_s: dict[tuple[int, int], float] = {}  # (prefill replica, prompt tokens): KV transfer time
        self.heap: list[tuple[float, int, int]] = []  # (step end, seq, replica)
        self.seq = itertools.count()
        self.arrivals = wl.arrival_s.tolist()
        self.owner = self._feed(assigned)  # each arrival's replica, when the router assigned them up front
        self.live = [-1] * len(self.replicas)  # the heap entry (its seq) of each busy replica's step or leap
        self.step_end = [float("inf")] * len(self.replicas)  # when it ends
        # routed replicas' leaps are priced this many arrivals ahead (a request routed to one cuts its leap)
        self.lookahead = LOOKAHEAD * len(self.front)
        self.i = 0  # the next arrival, in trace order, that no replica has taken in
        self.now = 0.0
        self.steps = self.events = 0
        self.watch = SloWatch(options.stop_when_missed, table) if options.stop_when_missed else None
        self.stopped = False

    def _feed(self, assigned: np.ndarray | None) -> list[int]:
        """Give each replica that no router reads its own arrivals; returns each arrival's replica when
        the router assigned them up front (else empty)."""
        arrivals, replicas = self.arrivals, self.replicas
        if self.fed and len(replicas) == 1:
            replicas[0].feed = ArrivalFeed(arrivals)
        elif assigned is not None and arrivals:
            for rep in replicas:
                mine = (assigned == rep.index).nonzero()[0]
                rep.feed = ArrivalFeed([arrivals[j] for j in mine.tolist()], mine.tolist())
            return list(assigned.tolist())
        return []

    def run(self, progress: Progress | None) -> None:
        arrivals, heap, transfers, status = self.arrivals, self.heap, self.transfers, self.table.status
        fed, n = self.fed, len(arrivals)
        report_every = max(1, n // 200)
        next_report = report_every
        watch, next_watch = self.watch, WATCH_EVERY
        scaler = self.scaler
        while True:
            if watch is not None and self.events >= next_watch:
                next_watch = self.events + WATCH_EVERY
                # leaps apply their rows when they end: the table is complete only up to the oldest one's start
                known = min((r.leap.start for r in self.replicas if r.leap is not None), default=self.now)
                if watch.missed(self.table, min(known, self.now)):
                    self.stopped = True
                    return
            while fed and self.i < n and status[self.i] != PENDING:  # a replica took it in inside a leap
                self.i += 1
            i = self.i
            if not (i < n or heap or transfers or (scaler is not None and scaler.holding(self.front))):
                break
            if progress is not None and i >= next_report:
                progress(i, n)
                next_report = i + report_every
            t_arrival = arrivals[i] if i < n else float("inf")
            t_transfer = transfers[0][0] if transfers else float("inf")
            if scaler is not None and scaler.next_time < min(t_arrival, t_transfer, heap[0][0] if heap else t_arrival):
                self._on_tick(scaler.next_time)
            elif heap and heap[0][0] <= t_arrival and heap[0][0] <= t_transfer:
                self._on_step_end()
            elif t_transfer <= t_arrival:
                self._on_kv_ready()
            else:
                self._on_arrival(t_arrival)
        if progress is not None:
            progress(n, n)
        if scaler is not None:
            scaler.close(self.now)

    def _on_tick(self, t: float) -> None:
        """The autoscaler's time: replicas ready, drained, or asked for (``sim/reactive.py``)."""
        assert self.scaler is not None
        self._advance(t)
        for k in self.scaler.tick(t, self.front):
            if not self.front[k].busy:
                self._start(self.front[k])
        self.accepting = [self.front[k] for k in self.scaler.up]

    def _advance(self, t: float) -> None:
        assert t >= self.now, "clock went back"
        self.now = t
        self.events += 1

    def _on_step_end(self) -> None:
        """A replica's step (or leap) ended: apply it, send finished prompts' KV on, start the next one."""
        t, seq, r = heapq.heappop(self.heap)
        if seq != self.live[r]:  # the end of a leap that a request routed to it cut short
            return
        self._advance(t)
        self.step_end[r] = float("inf")
        rep = self.replicas[r]
        if rep.leap is not None and rep.extend(t, self._horizon()):
            self._push(rep, rep.leap.end)
            return
        self.steps += rep.leap.steps if rep.leap is not None else 1
        rep.finish_step(t)
        if self.check:
            _check(rep)
        for rid, t_first in rep.handoffs:
            key = (rep.index, int(self.table.input[rid]))
            move = self.transfer_s.get(key)
            if move is None:  # the same prompt length from the same replica always takes as long
                move = self.transfer_s[key] = kv_transfer_s(rep.dep, key[1], self.kv_link_gb_s,
                                                            across_nodes=self.across[rep.index])
            heapq.heappush(self.transfers, (t_first + move, next(self.seq), rid))
        rep.handoffs.clear()
        if self.gpu_of is not None:
            self._release_gpu(rep)
        self._start(rep)

    def _release_gpu(self, rep: Replica) -> None:
        """``rep``'s step left its device: the replicas waiting for it go first, in turn, then ``rep`` again."""
        assert self.gpu_of is not None
        g = self.gpu_of[rep.index]
        del self.gpu_owner[g]
        for other in self.gpu_queue.pop(g, []):
            self._start(other)

    def _on_kv_ready(self) -> None:
        """A prompt's KV reached the decode pool: queue it at the least KV-loaded replica of its group."""
        t, _, rid = heapq.heappop(self.transfers)
        self._advance(t)
        table = self.table
        group = self.groups[int(table.replica[rid])]  # still the prefill replica's index
        for rep in group:
            rep.observe(t)
        target = group[self.to_decode.choose(rid, group)]
        table.replica[rid] = target.index
        table.kv_ready[rid] = table.input[rid]
        self._offer(target, rid)

    def _on_arrival(self, t: float) -> None:
        """A request arrived: route it to an accepting front replica."""
        self._advance(t)
        rid = self.i
        self.i += 1
        changes = self.changes
        while self.next_change < len(changes) and changes[self.next_change][0] <= t:
            self.accepting = [self.front[k] for k in changes[self.next_change][1]] or list(self.front)
            self.next_change += 1
        if self.owner:
            target = self.replicas[self.owner[rid]]
        elif self.pools is not None:  # several models: the class's own replicas
            pool = self.pools[int(self.table.wl.class_index[rid])]
            for rep in pool:
                rep.observe(t)
            target = pool[self.route.choose(rid, pool)] if len(pool) > 1 else pool[0]
        elif self.scaler is not None and not self.accepting:  # scaled to zero: start one, the request waits there
            target = self.front[self.scaler.activate(t)]
        elif len(self.front) == 1:  # a lone replica: no load to read, no choice to make
            target = self.front[0]
        else:
            accepting = self.accepting
            for rep in accepting:
                rep.observe(t)
            target = accepting[self.route.choose(rid, accepting)]
        self.table.replica[rid] = target.index
        self._offer(target, rid, status=WAITING)

    def _offer(self, target: Replica, rid: int, *, status: int | None = None) -> None:
        """Reject ``rid`` with the replica's reason, or queue it there (as ``status``, if given) and start
        the replica if it is idle. An arrival and a prompt whose KV reached its decode replica both land here."""
        table = self.table
        reason = target.reject_reason(rid)
        if reason:
            table.status[rid] = REJECTED
            table.reject_reason[rid] = reason
            return
        if status is not None:
            table.status[rid] = status
        leap = target.leap
        if leap is not None and target.feed is None:  # (a fed replica's leap ends at this arrival anyway)
            end = leap.end
            target.offer(rid, self.now, self._next_join(target), self._horizon())
            if leap.end != end:
                self._push(target, leap.end)
            return
        target.enqueue(rid)
        if not target.busy:
            self._start(target)

    def _start(self, rep: Replica) -> None:
        """Start the replica's next step; a leap may run until the next event that could change it (a replica
        the autoscaler is still starting holds its queue until it is ready)."""
        if self.scaler is not None and rep.index < len(self.front) and self.scaler.states[rep.index] == STARTING:
            return
        if self.gpu_of is not None:
            g = self.gpu_of[rep.index]
            if self.gpu_owner.get(g, rep.index) != rep.index:  # another replica's step holds the device
                waiting = self.gpu_queue.setdefault(g, [])
                if rep not in waiting:
                    waiting.append(rep)
                return
        feed = rep.feed
        end = rep.start_step(self.now, feed.next_time(self.table.status) if feed is not None else self._horizon())
        if end is not None:
            if self.gpu_of is not None:
                self.gpu_owner[self.gpu_of[rep.index]] = rep.index
            self._push(rep, end)

    def _next_join(self, rep: Replica) -> float:
        """The earliest another request could reach ``rep``'s queue: the next arrival, and for a decode
        replica also the next KV transfer and the end of any prefill step (which may start one)."""
        t = self.arrivals[self.i] if self.i < len(self.arrivals) else float("inf")
        if rep.state.role == "decode":
            if self.transfers:
                t = min(t, self.transfers[0][0])
            t = min([t, *self.step_end[: self.num_prefill]])
        return t

    def _horizon(self) -> float:
        """How far a routed replica's leap is priced: a request routed to it ends it sooner, so this only
        trades pricing steps that may go unused against events."""
        j = self.i + self.lookahead
        return self.arrivals[j] if j < len(self.arrivals) else float("inf")

    def _push(self, rep: Replica, end: float) -> None:
        """``rep``'s step or leap now ends at ``end`` (an earlier entry of it, if any, goes stale)."""
        seq = next(self.seq)
        heapq.heappush(self.heap, (end, seq, rep.index))
        self.live[rep.index], self.step_end[rep.index] = seq, end


def kv_transfer_s(dep: Deployment, prompt_tokens: int, link_gb_s: float | None, *, across_nodes: bool = False) -> float:
    """Time to move a prompt's KV cache from a prefill to a decode replica.

    Default link: the device's intra-node link in one direction (prefill and decode in one
    node, as DistServe places them when it can), else its network link. ``across_nodes``
    (decode on another device type, so another machine): the network link.
    """
    dev = dep.device
    intra = dev.intra_node_link_gb_s / 2 if dev.intra_node_link_gb_s and not across_nodes else 0.0
    gb_s = link_gb_s or intra or dev.inter_node_link_gb_s
    full, windowed = dep.attention_layers  # the layers that keep a window (or a KV budget) send only that
    kept = min(prompt_tokens, dep.attention_window or prompt_tokens)
    kv_bytes = dep.model.kv_values_per_token_per_layer * dep.kv.bytes_per_value * (full * prompt_tokens
                                                                                  + windowed * kept)
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
