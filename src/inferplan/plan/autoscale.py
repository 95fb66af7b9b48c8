"""Time-varying load: replicas per window, with cold starts and a scale-down delay, against static peak.

For each window the schedule asks for the cheapest fleet that carries that window's rate of
each request-size bucket: the fleet program of ``fleet.py`` over the planned replica types and
their simulated capacities (one type and one bucket: ``ceil(rate / capacity)``), at least one
replica; a change must pay for its launches and releases within the window. Types may differ
from window to window (HeteroScale, P163, scales prefill-heavy and decode-heavy pools
separately; here the mix follows the window's request sizes). A replica
that joins is launched ``cold_start_s`` before its window so it accepts requests from the
window's start: model load time (weights / the device's host load bandwidth) plus an
engine start-up constant. A replica no longer needed keeps accepting for
``scale_down_delay_s`` and then drains. Both the schedule and a static fleet sized by the same
program for each bucket's peak window rate are simulated on the same workload; cost
counts every billed replica-second, cold starts included (HARMONY, P209, studies richer policies).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from inferplan.perf.cold_start import cold_start
from inferplan.perf.deployment import Deployment
from inferplan.plan.fleet import solve_fleet
from inferplan.plan.reactive_plan import ReactiveResult, peak_concurrency, search_reactive
from inferplan.sim.cluster import Cluster
from inferplan.sim.loop import simulate
from inferplan.sim.routers import PlannedRouter, Router
from inferplan.sim.slo import SLO
from inferplan.sim.summary import summarize
from inferplan.sim.summary_types import Summary
from inferplan.workload.request import Workload


@dataclass(frozen=True, slots=True)
class AutoscaleResult:
    window_s: float
    replicas_per_window: tuple[int, ...]
    static_replicas: int
    cold_start_s: float
    scale_down_delay_s: float
    uptime: tuple[tuple[tuple[float, float], ...], ...]
    auto_cost: float
    static_cost: float
    duration_s: float
    auto_summary: Summary
    static_summary: Summary
    types: tuple[str, ...] = ()  # the replica types, in the order of the per-type counts
    replicas_per_window_by_type: tuple[tuple[int, ...], ...] = ()  # (types, windows)
    static_replicas_by_type: tuple[int, ...] = ()
    router: str = "least-outstanding"
    reactive: ReactiveResult | None = None  # an HPA per type, reacting to the simulated metric

    def to_dict(self) -> dict[str, Any]:
        day = 86_400.0 / max(self.duration_s, 1e-9)
        keys = ("slo_attainment", "slos_met", "ttft_s", "tpot_s", "num_rejected")
        auto, static = self.auto_summary.to_json(), self.static_summary.to_json()
        return {
            "window_s": self.window_s,
            "replicas_per_window": list(self.replicas_per_window),
            "static_replicas": self.static_replicas,
            "cold_start_s": self.cold_start_s,
            "scale_down_delay_s": self.scale_down_delay_s,
            "cost_per_day": self.auto_cost * day,
            "static_cost_per_day": self.static_cost * day,
            "saving_pct": 100 * (1 - self.auto_cost / self.static_cost) if self.static_cost else 0.0,
            "replicas_per_window_by_type": dict(zip(self.types, map(list, self.replicas_per_window_by_type),
                                                    strict=True)),
            "static_replicas_by_type": dict(zip(self.types, self.static_replicas_by_type, strict=True)),
            "router": self.router,
            "autoscaled": {k: auto[k] for k in keys},
            "static": {k: static[k] for k in keys},
            "reactive": None if self.reactive is None else self.reactive.to_dict(day),
            "recommendation": self.recommendation(),
        }

    def recommendation(self) -> str:
        """Which provisioning to run, and why: a saving counts only if the SLOs still hold (the per-window
        schedule needs the load known ahead; the reactive HPA is what a cluster runs without it)."""
        r = self.reactive
        if r is not None and r.summary.slos_met and r.cost < self.static_cost and (
                not self.auto_summary.slos_met or r.cost <= self.auto_cost):
            saving = 100 * (1 - r.cost / self.static_cost)
            return (f"reactive autoscaling (HPA on {r.pools[0].policy.metric}): it saves {saving:.1f}% against "
                    "static peak provisioning, meets every SLO, and needs no forecast")
        saving = 100 * (1 - self.auto_cost / self.static_cost) if self.static_cost else 0.0
        auto, static = self.auto_summary, self.static_summary
        if auto.slos_met and saving > 0:
            return f"autoscale: it saves {saving:.1f}% against static peak provisioning and meets every SLO"
        if static.slos_met:
            why = (f"autoscaling saves nothing here ({saving:+.1f}%)" if saving <= 0 else
                   f"autoscaling would save {saving:.1f}% but misses an SLO (attainment "
                   f"{auto.slo_attainment:.1%} vs {static.slo_attainment:.1%})")
            return f"static peak provisioning: {why}"
        return (f"neither meets every SLO (attainment autoscaled {auto.slo_attainment:.1%}, static "
                f"{static.slo_attainment:.1%}): add capacity or relax the SLOs before choosing")


def cold_start_s(dep: Deployment) -> float:
    """The median cold start (``perf/cold_start.py``): the oracle launches a replica that long before its window."""
    return cold_start(dep).median_s


def window_of(wl: Workload, window_s: float) -> np.ndarray:
    """Each request's window (the last window takes the remainder of the run)."""
    windows = max(1, int(np.ceil(max(wl.duration_s, 1e-9) / window_s)))
    which: np.ndarray = np.minimum((wl.arrival_s / window_s).astype(int), windows - 1)
    return which


def window_rates(wl: Workload, window_s: float, bucket_of: np.ndarray, num_buckets: int) -> np.ndarray:
    """Request rate per (window, bucket)."""
    windows = max(1, int(np.ceil(max(wl.duration_s, 1e-9) / window_s)))
    cells = np.bincount(window_of(wl, window_s) * num_buckets + bucket_of, minlength=windows * num_buckets)
    rates: np.ndarray = cells.reshape(windows, num_buckets) / window_s
    return rates


def replicas_per_window(wl: Workload, capacity_rps: float, window_s: float) -> tuple[int, ...]:
    rates = window_rates(wl, window_s, np.zeros(len(wl), dtype=np.int64), 1)[:, 0]
    return tuple(max(1, int(np.ceil(r / capacity_rps))) for r in rates)


def fleets_per_window(rates: np.ndarray, capacity: np.ndarray, prices: np.ndarray, *,
                      launch_s: np.ndarray | None = None, release_s: float = 0.0,
                      window_s: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """The cheapest fleet for each window's bucket rates, window after window: counts (windows, types)
    and shares (windows, buckets, types).

    ``capacity`` is (buckets, types). A replica launched costs its price for ``launch_s`` (cold
    start) and one released its price for ``release_s`` (scale-down delay), relative to a window of
    ``window_s``: a change of type pays for itself or does not happen. A window with no traffic keeps
    one replica of the cheapest type that serves every bucket."""
    counts = np.zeros((rates.shape[0], capacity.shape[1]), dtype=np.int64)
    shares = np.zeros((rates.shape[0], *capacity.shape))
    serves_all = np.nonzero((capacity > 0).all(axis=0))[0]
    fallback = int(serves_all[np.argmin(prices[serves_all])]) if serves_all.size else int(np.argmin(prices))
    launch = prices * (np.zeros_like(prices) if launch_s is None else launch_s) / window_s
    release = prices * release_s / window_s
    previous: np.ndarray | None = None
    for w, r in enumerate(rates):
        fleet = solve_fleet(r, capacity, prices, previous=previous, launch_cost=launch, release_cost=release)
        counts[w] = fleet.replicas
        shares[w] = fleet.shares
        if counts[w].sum() == 0:
            counts[w, fallback] = 1
            shares[w, :, fallback] = 1.0
        previous = counts[w].astype(float)
    return counts, shares


def uptime_intervals(counts: tuple[int, ...], window_s: float,
                     delay_s: float) -> tuple[tuple[tuple[float, float], ...], ...]:
    """Per replica: the intervals it accepts requests (wanted windows, plus the scale-down delay, merged)."""
    spans: list[tuple[tuple[float, float], ...]] = []
    for k in range(max(counts)):
        mine: list[tuple[float, float]] = []
        for w, c in enumerate(counts):
            if k < c:
                start, end = w * window_s, (w + 1) * window_s + delay_s
                if w == len(counts) - 1:
                    end = float("inf")  # the last window's replicas stay until the work is done
                if mine and start <= mine[-1][1]:
                    mine[-1] = (mine[-1][0], max(mine[-1][1], end))
                else:
                    mine.append((start, end))
        spans.append(tuple(mine))
    return tuple(spans)


def billed_seconds(uptime: tuple[tuple[tuple[float, float], ...], ...], makespan: float, cold_s: float) -> float:
    """Replica-seconds paid for: each interval (clipped to the run) plus a cold start (except at time 0)."""
    total = 0.0
    for spans in uptime:
        for a, b in spans:
            total += min(b, makespan) - a + (cold_s if a > 0 else 0.0)
    return total


def plan_autoscale(dep: Deployment, wl: Workload, slos: tuple[SLO, ...], *, capacity_rps: float, window_s: float,
                   scale_down_delay_s: float = 300.0, seed: int = 0) -> AutoscaleResult:
    """One replica type whose capacity was measured on the whole request mix."""
    return plan_autoscale_fleet([dep], [dep.describe()], np.array([[capacity_rps]]),
                                np.zeros(len(wl), dtype=np.int64), wl, slos, window_s=window_s,
                                scale_down_delay_s=scale_down_delay_s, seed=seed, router="least-outstanding")


def plan_autoscale_fleet(deps: list[Deployment], labels: list[str], capacity: np.ndarray, bucket_of: np.ndarray,
                         wl: Workload, slos: tuple[SLO, ...], *, window_s: float, scale_down_delay_s: float = 300.0,
                         seed: int = 0, router: str = "planned") -> AutoscaleResult:
    """Replicas of each type per window (``capacity``: (buckets, types) req/s), simulated against a static
    fleet sized by the same program for every bucket's peak window rate. ``planned`` routes each window's
    buckets in that window's shares; any other router name is used as is. Every replica runs its engine's scheduler."""
    num_buckets = capacity.shape[0]
    prices = np.array([d.price_per_hour or 0.0 for d in deps])
    rates = window_rates(wl, window_s, bucket_of, num_buckets)
    colds = np.array([cold_start_s(d) for d in deps])
    counts, shares = fleets_per_window(rates, capacity, prices, launch_s=colds, release_s=scale_down_delay_s,
                                       window_s=window_s)
    static = solve_fleet(rates.max(axis=0), capacity, prices)
    static_counts = np.array(static.replicas, dtype=np.int64)
    if static_counts.sum() == 0:
        static_counts = counts.max(axis=0)
    # instances: per type, as many as its busiest window; each with its own uptime
    auto_deps: list[Deployment] = []
    owner: list[int] = []
    uptime: list[tuple[tuple[float, float], ...]] = []
    for c, d in enumerate(deps):
        spans = (uptime_intervals(tuple(int(x) for x in counts[:, c]), window_s, scale_down_delay_s)
                 if counts[:, c].any() else ())
        auto_deps += [d] * len(spans)
        owner += [c] * len(spans)
        uptime += list(spans)
    static_deps = [d for c, d in enumerate(deps) for _ in range(int(static_counts[c]))]
    static_owner = [c for c in range(len(deps)) for _ in range(int(static_counts[c]))]
    auto_router: str | Router = router
    static_router: str | Router = router
    if router == "planned":
        auto_router = PlannedRouter(bucket_of, shares, owner, window_of(wl, window_s))
        static_router = PlannedRouter(bucket_of, static.shares, static_owner)
    auto = simulate(wl, Cluster.replicas(auto_deps, uptime=uptime), router=auto_router, seed=seed)
    static_sim = simulate(wl, Cluster.replicas(static_deps), router=static_router, seed=seed)
    auto_cost = sum(billed_seconds((spans,), auto.makespan_s, colds[c]) * prices[c] / 3600
                    for c, spans in zip(owner, uptime, strict=True))
    static_cost = float(static_counts @ prices) * static_sim.makespan_s / 3600
    used = sorted(set(owner) | set(static_owner))
    static_summary = summarize(static_sim, slos)
    target = peak_concurrency(static_sim, window_of(wl, window_s), int(static_counts.sum()))
    reactive = search_reactive(deps, labels, static_counts, counts[0], wl, slos, target=target, cold_s=colds,
                               router=router, seed=seed)
    return AutoscaleResult(window_s, tuple(int(x) for x in counts.sum(axis=1)), int(static_counts.sum()),
                           float(max(colds[c] for c in used)), scale_down_delay_s, tuple(uptime), float(auto_cost),
                           static_cost, max(auto.makespan_s, static_sim.makespan_s), summarize(auto, slos),
                           static_summary, tuple(labels[c] for c in used),
                           tuple(tuple(int(x) for x in counts[:, c]) for c in used),
                           tuple(int(static_counts[c]) for c in used), router, reactive)
