"""Online and offline work in one plan: a bucket per offline class, priority scheduling on the fleet, and what
the same classes would cost on fleets of their own (HyGen P140, BlendServe P269: offline work fills the
capacity an online fleet keeps spare for its latency targets).

An offline class (a deadline on each request) is a bucket whose capacity is the highest rate a replica keeps
up with (no latency SLOs), and whose rate is what finishes it within the deadline. The fleet serves every class
with the engines' priority scheduling (online first); the verification simulation judges the online
classes by the SLOs and the offline ones by their deadlines.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from inferplan.errors import InputError
from inferplan.perf.deployment import Deployment
from inferplan.plan.capacity import Bucket, session_bucket
from inferplan.plan.pools import ReplicaType
from inferplan.workload.request import Workload

if TYPE_CHECKING:
    from inferplan.plan.search import PlanRequest, PlanResult


@dataclass(frozen=True, slots=True)
class SeparateFleet:
    """The fleet one side of the workload (its online classes, or its offline ones) would need alone."""

    num_requests: int
    cost_per_hour: float
    fleet: tuple[str, ...]  # "N x type" per type
    verified: bool


def make_buckets(wl: Workload, k: int) -> tuple[list[Bucket], np.ndarray]:
    """Split requests into up to ``k`` size classes by prompt + output tokens (equal-count quantiles); a
    session workload is one class, so probes replay whole sessions with their shared prefixes. Each class
    with a deadline (offline work) is a bucket of its own, at the rate that finishes it in time."""
    if wl.all_sessions:
        return [session_bucket(wl)], np.zeros(len(wl), dtype=np.int64)
    timed = np.isfinite(wl.deadline_s)
    bucket_of = np.zeros(len(wl), dtype=np.int64)
    buckets: list[Bucket] = []
    online = np.flatnonzero(~timed)
    if online.size:
        size = wl.input_tokens[online] + wl.output_tokens[online]
        edges = np.unique(np.quantile(size, np.linspace(0, 1, k + 1)[1:-1])) if k > 1 else np.array([])
        which = np.searchsorted(edges, size, side="right")
        present = np.unique(which)
        span = max(float(wl.arrival_s[online].max() - wl.arrival_s[online].min()), 1e-9)
        for b in present.tolist():
            idx = online[which == b]
            lo, hi = int(size[which == b].min()), int(size[which == b].max())
            buckets.append(Bucket(f"{lo}-{hi} tokens", wl.input_tokens[idx], wl.output_tokens[idx], idx.size / span))
        bucket_of[online] = np.searchsorted(present, which)
    for c, name in enumerate(wl.class_names):
        idx = np.flatnonzero(timed & (wl.class_index == c))
        if idx.size:
            window = float(wl.arrival_s[idx].max() - wl.arrival_s[idx].min() + wl.deadline_s[idx].min())
            bucket_of[idx] = len(buckets)
            buckets.append(Bucket(f"{name} (offline)", wl.input_tokens[idx], wl.output_tokens[idx],
                                  idx.size / window, offline=True))
    return buckets, bucket_of


PEAK_WINDOWS = 12  # the windows a run's arrivals are counted in to find its busiest stretch
PEAK_Z = 4.0  # how many Poisson standard deviations (sqrt(count)) the busiest window must exceed the mean by


def peak_factor(wl: Workload) -> float:
    """How far the busiest of ``PEAK_WINDOWS`` equal windows of the online arrivals runs above their mean
    rate, where that is more than chance: a Poisson stream's windows stray by about sqrt(count) requests, so
    a busiest window within ``PEAK_Z`` of those gives 1. A fleet sized for the mean misses its SLOs through a
    daily peak (``diurnal-chat``) or a burst of a trace, which a static fleet must carry."""
    arrivals = wl.arrival_s[wl.online & ~np.isfinite(wl.deadline_s)]
    if arrivals.size < 10 * PEAK_WINDOWS or float(arrivals.max() - arrivals.min()) <= 0:
        return 1.0
    counts = np.histogram(arrivals, bins=PEAK_WINDOWS, range=(float(arrivals.min()), float(arrivals.max())))[0]
    mean = arrivals.size / PEAK_WINDOWS
    peak = float(counts.max())
    return peak / mean if peak - mean > PEAK_Z * np.sqrt(mean) else 1.0


def check_deadlines(wl: Workload, deps: list[Deployment]) -> None:
    """A deadline shorter than the class's longest request takes alone on the fastest of ``deps`` cannot be met by
    a fleet of any size: said before the search sizes one."""
    from inferplan.perf.step_cost import StepCost

    costs = [StepCost(d) for d in deps]
    for k, name in enumerate(wl.class_names):
        idx = np.flatnonzero((wl.class_index == k) & np.isfinite(wl.deadline_s))
        if not idx.size or not costs:
            continue
        longest = idx[np.argmax(wl.input_tokens[idx] + wl.output_tokens[idx])]
        prompt, outputs = int(wl.input_tokens[longest]), int(wl.output_tokens[longest])
        alone = min(c.prefill_seconds(prompt) + outputs * c.decode_seconds(1, prompt + outputs // 2) for c in costs)
        deadline = float(wl.deadline_s[idx].min())
        if deadline < alone:
            raise InputError(f"--workload {name}: deadline={deadline:g}s is shorter than its longest request "
                             f"({prompt:,} + {outputs:,} tokens) takes alone on the fastest configuration "
                             f"({alone:.1f} s): no fleet meets it; allow at least {alone:.0f} s")


def by_priority(t: ReplicaType) -> ReplicaType:
    """The replica type with its engine's priority scheduling on, where the engine has it (vLLM, SGLang)."""
    def on(dep: Deployment) -> Deployment:
        if not dep.serving_engine.priority_flags:
            return dep
        return replace(dep, limits=replace(dep.limits, priority_scheduling=True))

    return replace(t, dep=on(t.dep), prefill_dep=None if t.prefill_dep is None else on(t.prefill_dep))


def sides(wl: Workload) -> dict[str, Workload]:
    """The online requests and the offline ones (those with a deadline), when the workload has both."""
    timed = np.isfinite(wl.deadline_s)
    if not timed.any() or timed.all():
        return {}
    return {"online": wl.take(np.flatnonzero(~timed)), "offline": wl.take(np.flatnonzero(timed))}


def separate_fleets(req: PlanRequest, wl: Workload, plan_part: Callable[[Workload], PlanResult],
                    say: Callable[[str], None]) -> dict[str, SeparateFleet]:
    """Each side of a workload of online and offline classes planned alone (``plan_part``), to show what
    serving them together saves."""
    out = {}
    for side, part in sides(wl).items():
        say(f"planning the {side} classes alone, for comparison")
        r = plan_part(part)
        fleet = tuple(f"{n} x {t.label()}" for t, n in zip(r.types, r.fleet.replicas, strict=True) if n)
        out[side] = SeparateFleet(len(part), r.fleet.cost_per_hour, fleet, r.verified)
    return out
