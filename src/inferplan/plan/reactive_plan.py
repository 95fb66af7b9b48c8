"""The reactive autoscaler beside the per-window plan: an HPA per replica type, simulated on the same workload.

Each type of the static fleet becomes a pool scaled by Kubernetes' HPA rule (``sim/reactive.py``) on the
per-replica ``concurrency`` (``vllm:num_requests_running + vllm:num_requests_waiting``). The target is
what the verified static fleet carried per replica in its busiest window (Little's law: that window's
arrivals per second times their mean end-to-end time, over the static replicas), the same for every
pool: a load-balancing router evens the concurrency out across pools, so the pools share one target.
Bounds: at least 1 replica, at most twice the static count (and 2 more than it); a pool starts at
the count the per-window plan gives its first window. Cost is every billed replica-second, cold
starts included (a replica is billed from the moment it is asked for).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from inferplan.perf.cold_start import SPREAD
from inferplan.perf.deployment import Deployment
from inferplan.sim.cluster import Cluster, SimOptions
from inferplan.sim.loop import SimResult, simulate
from inferplan.sim.reactive import ScalingPolicy
from inferplan.sim.slo import SLO
from inferplan.sim.summary import summarize
from inferplan.sim.summary_types import Summary
from inferplan.workload.request import Workload


@dataclass(frozen=True, slots=True)
class ReactivePool:
    """One type's HPA, as simulated and as the manifests write it."""

    type_label: str
    policy: ScalingPolicy
    initial: int

    def to_dict(self) -> dict[str, Any]:
        p = self.policy
        return {"type": self.type_label, "metric": p.metric, "target": p.target, "min_replicas": p.min_replicas,
                "max_replicas": p.max_replicas, "initial_replicas": self.initial, "sync_s": p.sync_s,
                "metric_delay_s": p.metric_delay_s, "tolerance": p.tolerance,
                "scale_down_window_s": p.scale_down_window_s, "cold_start_s": p.cold_start_s,
                "cold_start_spread": p.cold_start_spread}


TARGET_STEPS = (0.8, 1.0, 1.25)  # the HPA targets tried, as shares of the static fleet's busiest-window concurrency


@dataclass(frozen=True, slots=True)
class ReactiveResult:
    pools: tuple[ReactivePool, ...]
    cost: float  # dollars over the run
    summary: Summary
    timeline: tuple[tuple[float, int], ...]  # (time, replicas billed) at every change
    router: str
    # every target tried: (target, dollars over the run, SLO attainment, every SLO met)
    tried: tuple[tuple[float, float, float | None, bool], ...] = ()

    def to_dict(self, day: float) -> dict[str, Any]:
        keys = ("slo_attainment", "slos_met", "ttft_s", "tpot_s", "num_rejected")
        s = self.summary.to_json()
        return {"cost_per_day": self.cost * day, "pools": [p.to_dict() for p in self.pools],
                "max_replicas_used": max((n for _, n in self.timeline), default=0),
                "scaling_events": len(self.timeline) - 1, "router": self.router,
                "targets_tried": [{"target": t, "cost_per_day": c * day, "slo_attainment": a, "slos_met": m}
                                  for t, c, a, m in self.tried], **{k: s[k] for k in keys}}


def peak_concurrency(static: SimResult, window: np.ndarray, replicas: int) -> float:
    """Requests in flight per replica in the static run's busiest window: its arrivals per second times their
    mean end-to-end time (Little's law), over the replicas."""
    t = static.table
    busiest = int(np.argmax(np.bincount(window)))
    mine = (window == busiest) & np.isfinite(t.t_finish)
    span = float(np.ptp(t.arrival[window == busiest])) or 1.0
    e2e = float((t.t_finish[mine] - t.arrival[mine]).mean()) if mine.any() else 1.0
    return int(mine.sum()) / span * e2e / max(replicas, 1)


def search_reactive(deps: list[Deployment], labels: list[str], static_counts: np.ndarray, first_counts: np.ndarray,
                    wl: Workload, slos: tuple[SLO, ...], *, target: float, cold_s: np.ndarray, router: str,
                    seed: int = 0) -> ReactiveResult:
    """The HPA at each of ``TARGET_STEPS`` x ``target`` requests in flight per replica: the cheapest that meets
    every SLO, else the one of the highest SLO attainment; every target tried is kept in ``tried``."""
    runs = [plan_reactive(deps, labels, static_counts, first_counts, wl, slos, target=target * k, cold_s=cold_s,
                          router=router, seed=seed) for k in TARGET_STEPS]
    best = min(runs, key=lambda r: (not r.summary.slos_met, r.cost if r.summary.slos_met else
                                    -(r.summary.slo_attainment or 0.0)))
    tried = tuple((r.pools[0].policy.target, r.cost, r.summary.slo_attainment, bool(r.summary.slos_met))
                  for r in runs)
    return replace(best, tried=tried)


def plan_reactive(deps: list[Deployment], labels: list[str], static_counts: np.ndarray, first_counts: np.ndarray,
                  wl: Workload, slos: tuple[SLO, ...], *, target: float, cold_s: np.ndarray, router: str,
                  seed: int = 0) -> ReactiveResult:
    """Simulate an HPA per type of the static fleet, each on ``target`` requests in flight per replica."""
    pools: list[ReactivePool] = []
    fleet: list[Deployment] = []
    members: list[tuple[int, ...]] = []
    for c, count in enumerate(static_counts.tolist()):
        if count == 0:
            continue
        policy = ScalingPolicy(target=round(max(target, 1.0), 1), min_replicas=1,
                               max_replicas=max(2 * count, count + 2), cold_start_s=float(cold_s[c]),
                               cold_start_spread=SPREAD)
        initial = int(min(max(first_counts[c], 1), policy.max_replicas))
        pools.append(ReactivePool(labels[c], policy, initial))
        members.append(tuple(range(len(fleet), len(fleet) + policy.max_replicas)))
        fleet += [deps[c]] * policy.max_replicas
    scaling = tuple((m, replace(p.policy, initial_replicas=p.initial)) for m, p in zip(members, pools, strict=True))
    route = "least-outstanding" if router == "planned" else router
    res = simulate(wl, Cluster.replicas(fleet), router=route, seed=seed, options=SimOptions(scaling=scaling))
    assert res.scaler is not None
    prices = [d.price_per_hour or 0.0 for d in fleet]
    cost = sum(s * p / 3600 for s, p in zip(res.scaler.billed_s, prices, strict=True))
    return ReactiveResult(tuple(pools), float(cost), summarize(res, slos), tuple(res.scaler.timeline), route)

