"""A reactive autoscaler inside the simulation: Kubernetes' HPA rule on a metric that arrives late.

Every ``sync_s`` (``--horizontal-pod-autoscaler-sync-period``, 15 s) the controller of each pool
reads the pool's per-replica average of a metric as it was ``metric_delay_s`` ago (a Prometheus
scrape interval; KEDA polls the same way) and recommends ``ceil(ready x value / target)``
replicas, unless the ratio is within ``tolerance`` (0.1) of 1; the recommendation is clamped to
``[min, max]``. Scaling down takes the highest recommendation of the last ``scale_down_window_s``
(``behavior.scaleDown.stabilizationWindowSeconds``, 300 s), scaling up the lowest of the last
``scale_up_window_s`` (0 s), as the Kubernetes documentation's algorithm details say. A replica
asked for starts a cold start later (``cold_start_s`` the median, each start drawn lognormal with
``cold_start_spread`` as its sigma; its parts in ``perf/cold_start.py``) and accepts arrivals from
then on; one let go stops accepting, finishes what it holds, and is billed until then. With
``min_replicas`` 0 (KEDA's scale to zero) the first arrival with no replica up starts one, and waits
in its queue until it is ready.

Metrics, as the engines export them (vllm/v1/metrics/loggers.py): ``concurrency`` is
``vllm:num_requests_running`` + ``vllm:num_requests_waiting``, ``queue`` the waiting ones,
``kv`` ``vllm:kv_cache_usage_perc``.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from inferplan.errors import InputError

if TYPE_CHECKING:
    from inferplan.sim.replica import Replica

METRICS = ("concurrency", "queue", "kv")
OFF, STARTING, UP, DRAINING = range(4)


@dataclass(frozen=True, slots=True, kw_only=True)
class ScalingPolicy:
    """One pool's HPA: the metric and its per-replica target, the bounds, the timings."""

    metric: str = "concurrency"
    target: float
    min_replicas: int = 1
    max_replicas: int
    cold_start_s: float  # the median start: pod scheduled, image pulled, weights loaded, engine up
    cold_start_spread: float = 0.0  # lognormal sigma of each start around the median (0: every start the median)
    sync_s: float = 15.0
    metric_delay_s: float = 15.0
    tolerance: float = 0.1
    scale_down_window_s: float = 300.0
    scale_up_window_s: float = 0.0
    initial_replicas: int | None = None  # up when the run starts (None: the minimum)

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise InputError(f"--autoscale-metric must be one of {', '.join(METRICS)}, got '{self.metric}'")
        if not self.cold_start_s >= 0:
            raise InputError(f"a cold start must take 0 s or more, got {self.cold_start_s:g} s")
        if not self.cold_start_spread >= 0:
            raise InputError(f"--cold-start-spread must be 0 or more (the sigma of a lognormal around the median "
                             f"cold start), got {self.cold_start_spread:g}")
        if not self.target > 0:
            raise InputError(f"--autoscale-target must be positive, got {self.target:g}")
        if not 0 <= self.min_replicas <= self.max_replicas or self.max_replicas < 1:
            raise InputError(f"the autoscaler's bounds must satisfy 0 <= minimum <= maximum, maximum >= 1 (got "
                             f"--min-replicas {self.min_replicas}, at most {self.max_replicas} replicas)")
        if self.initial_replicas is not None and not self.min_replicas <= self.initial_replicas <= self.max_replicas:
            raise InputError(f"initial replicas {self.initial_replicas} outside "
                             f"{self.min_replicas}..{self.max_replicas}")


def metric_of(rep: Replica, metric: str) -> float:
    """A replica's metric now (``rep.observe`` was called): what its /metrics endpoint would report."""
    if metric == "queue":
        return float(len(rep.state.waiting))
    if metric == "kv":
        return rep.kv_usage
    return float(rep.num_outstanding)


class _Pool:
    """One pool's replicas (front indices), their states, and the controller's memory."""

    def __init__(self, members: tuple[int, ...], policy: ScalingPolicy) -> None:
        self.members, self.policy = members, policy
        self.samples: deque[tuple[float, float, int]] = deque()  # (time, per-replica average, ready replicas)
        self.recommendations: deque[tuple[float, int]] = deque()

    def desired(self, now: float, states: list[int]) -> int | None:
        """The replica count the HPA asks for now (None: no sample old enough yet)."""
        p = self.policy
        while len(self.samples) > 1 and self.samples[1][0] <= now - p.metric_delay_s:
            self.samples.popleft()
        if not self.samples or self.samples[0][0] > now - p.metric_delay_s:
            return None
        _, value, ready = self.samples[0]
        current = sum(states[k] in (STARTING, UP) for k in self.members)
        ratio = value / p.target
        raw = current if ready and abs(ratio - 1) <= p.tolerance else math.ceil(max(ready, 1) * ratio)
        raw = min(max(raw, p.min_replicas), p.max_replicas)
        self.recommendations.append((now, raw))
        keep = max(p.scale_down_window_s, p.scale_up_window_s)
        while self.recommendations and self.recommendations[0][0] < now - keep:
            self.recommendations.popleft()
        if raw < current:  # down: the highest recommendation of the stabilization window
            return min(current, max(r for t, r in self.recommendations if t >= now - p.scale_down_window_s))
        if raw > current:  # up: the lowest of its (usually empty) window
            return max(current, min(r for t, r in self.recommendations if t >= now - p.scale_up_window_s))
        return current


class ReactiveScaler:
    """The pools' controllers and every front replica's state; the event loop calls ``tick`` at ``next_time``."""

    def __init__(self, pools: tuple[tuple[tuple[int, ...], ScalingPolicy], ...], num_front: int,
                 rng: np.random.Generator | None = None) -> None:
        self.pools = [_Pool(members, policy) for members, policy in pools]
        self.rng = rng or np.random.default_rng(0)
        self.cold_starts: list[float] = []  # every cold start drawn, in order
        self.states = [OFF] * num_front
        self.ready_at = [0.0] * num_front
        self.billed_from = [0.0] * num_front
        self.billed_s = [0.0] * num_front
        self.pool_of = [0] * num_front
        self.timeline: list[tuple[float, int]] = []  # (time, replicas billed: starting, up or draining) at changes
        for p, pool in enumerate(self.pools):
            for k in pool.members:
                self.pool_of[k] = p
            start = pool.policy.initial_replicas
            for k in pool.members[: pool.policy.min_replicas if start is None else start]:
                self.states[k] = UP  # the pool starts where its controller had it, ready
        self.next_sync = 0.0
        self._note(0.0)

    @property
    def up(self) -> list[int]:
        return [k for k, s in enumerate(self.states) if s == UP]

    @property
    def next_time(self) -> float:
        starting = [self.ready_at[k] for k, s in enumerate(self.states) if s == STARTING]
        return min([self.next_sync, *starting])

    def tick(self, now: float, front: tuple[Replica, ...]) -> list[int]:
        """Promote replicas that are ready, retire drained ones, and at a sync sample and scale; returns the
        replicas that became ready (the loop starts those holding requests)."""
        ready = [k for k, s in enumerate(self.states) if s == STARTING and self.ready_at[k] <= now]
        for k in ready:
            self.states[k] = UP
        for k, s in enumerate(self.states):
            if s == DRAINING:
                front[k].observe(now)
                if front[k].num_outstanding == 0:
                    self._stop(k, now)
        if now >= self.next_sync:
            self.next_sync = now + self.pools[0].policy.sync_s
            for pool in self.pools:
                self._sync(pool, now, front)
        self._note(now)
        return ready

    def _sync(self, pool: _Pool, now: float, front: tuple[Replica, ...]) -> None:
        """Sample the pool's metric: its average over the ready replicas, counting the requests that replicas
        still starting hold (KEDA's HTTP add-on holds them at its interceptor and counts them as pending)."""
        up = [k for k in pool.members if self.states[k] == UP]
        held = [k for k in pool.members if self.states[k] == STARTING]
        for k in up:
            front[k].observe(now)
        total = sum(metric_of(front[k], pool.policy.metric) for k in up)
        if pool.policy.metric != "kv":
            total += sum(len(front[k].state.waiting) for k in held)
        pool.samples.append((now, total / max(len(up), 1), len(up)))
        want = pool.desired(now, self.states)
        if want is not None:
            self._scale_to(pool, want, now)

    def _scale_to(self, pool: _Pool, want: int, now: float) -> None:
        live = [k for k in pool.members if self.states[k] in (STARTING, UP)]
        if want > len(live):
            spare = sorted((k for k in pool.members if self.states[k] in (OFF, DRAINING)),
                           key=lambda k: self.states[k] != DRAINING)  # a draining replica needs no cold start
            for k in spare[: want - len(live)]:
                self.start(k, now)
        for k in sorted(live, key=lambda k: (self.states[k] == UP, -k))[: max(len(live) - want, 0)]:
            if self.states[k] == STARTING:  # never became ready: let go at once
                self._stop(k, now)
            else:
                self.states[k] = DRAINING

    def start(self, k: int, now: float) -> None:
        """Ask for replica ``k``: ready a cold start from now (a draining one is simply kept)."""
        if self.states[k] == DRAINING:
            self.states[k] = UP
            return
        self.states[k] = STARTING
        policy = self.pools[self.pool_of[k]].policy
        cold = policy.cold_start_s
        if policy.cold_start_spread > 0:
            cold *= math.exp(policy.cold_start_spread * float(self.rng.standard_normal()))
        self.cold_starts.append(cold)
        self.ready_at[k] = now + cold
        self.billed_from[k] = now
        self._note(now)

    def activate(self, now: float) -> int:
        """No replica is up for an arrival (scale from zero): the one ready soonest, started if none is."""
        starting = [k for k, s in enumerate(self.states) if s == STARTING]
        if not starting:
            k = next(k for k, s in enumerate(self.states) if s == OFF)
            self.start(k, now)
            starting = [k]
        self._note(now)
        return min(starting, key=lambda k: self.ready_at[k])

    def _stop(self, k: int, now: float) -> None:
        self.billed_s[k] += now - self.billed_from[k]
        self.states[k] = OFF
        self._note(now)

    def holding(self, front: tuple[Replica, ...]) -> bool:
        """Whether a replica not yet ready holds requests (the run must go on until it starts)."""
        return any(s == STARTING and len(front[k].state.waiting) for k, s in enumerate(self.states))

    def close(self, end: float) -> None:
        """The run is over at ``end``: bill every replica still on until then."""
        for k, s in enumerate(self.states):
            if s != OFF:  # billed to the end; the timeline keeps what was on while the run lasted
                self.billed_s[k] += max(end, self.billed_from[k]) - self.billed_from[k]
                self.states[k] = OFF

    def _note(self, now: float) -> None:
        live = sum(s != OFF for s in self.states)
        if not self.timeline or self.timeline[-1][1] != live:
            self.timeline.append((now, live))
