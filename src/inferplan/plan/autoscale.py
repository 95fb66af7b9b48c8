"""Time-varying load: replicas per window, with cold starts and a scale-down delay, against static peak.

For each window the schedule asks for ``ceil(rate / capacity)`` replicas (at least one),
where capacity is the replica's simulated capacity on the whole request mix. A replica
that joins is launched ``cold_start_s`` before its window so it accepts requests from the
window's start: model load time (weights / the device's host load bandwidth) plus an
engine start-up constant. A replica no longer needed keeps accepting for
``scale_down_delay_s`` and then drains. Both the schedule and a static fleet sized for the
peak window are simulated on the same workload; cost counts every billed replica-second,
cold starts included (HeteroScale P163 and HARMONY P209 study richer policies).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from inferplan.perf.deployment import Deployment
from inferplan.perf.memory import weights_bytes
from inferplan.sim.loop import simulate
from inferplan.sim.policies import get_policy
from inferplan.sim.slo import SLO
from inferplan.sim.summary import summarize
from inferplan.workload.request import Workload

ENGINE_STARTUP_S = 60.0  # container start, engine init, CUDA-graph capture: a typical vLLM start, measured elsewhere


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
    auto_summary: dict[str, Any]
    static_summary: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        day = 86_400.0 / max(self.duration_s, 1e-9)
        keys = ("slo_attainment", "slos_met", "ttft_s", "tpot_s", "num_rejected")
        return {
            "window_s": self.window_s,
            "replicas_per_window": list(self.replicas_per_window),
            "static_replicas": self.static_replicas,
            "cold_start_s": self.cold_start_s,
            "scale_down_delay_s": self.scale_down_delay_s,
            "cost_per_day": self.auto_cost * day,
            "static_cost_per_day": self.static_cost * day,
            "saving_pct": 100 * (1 - self.auto_cost / self.static_cost) if self.static_cost else 0.0,
            "autoscaled": {k: self.auto_summary[k] for k in keys},
            "static": {k: self.static_summary[k] for k in keys},
        }


def cold_start_s(dep: Deployment) -> float:
    """Load the weights from the host at the device's load bandwidth, plus engine start-up."""
    return weights_bytes(dep) * dep.num_devices / dep.device.host_load_bytes_per_s + ENGINE_STARTUP_S


def replicas_per_window(wl: Workload, capacity_rps: float, window_s: float) -> tuple[int, ...]:
    windows = max(1, int(np.ceil(max(wl.duration_s, 1e-9) / window_s)))
    counts = np.bincount(np.minimum((wl.arrival_s / window_s).astype(int), windows - 1), minlength=windows)
    rates = counts / window_s
    return tuple(max(1, int(np.ceil(r / capacity_rps))) for r in rates)


def uptime_intervals(counts: tuple[int, ...], window_s: float, delay_s: float) -> tuple[tuple[tuple[float, float], ...], ...]:
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
    counts = replicas_per_window(wl, capacity_rps, window_s)
    peak = max(counts)
    uptime = uptime_intervals(counts, window_s, scale_down_delay_s)
    policy = get_policy("vllm")
    auto = simulate(wl, [dep] * peak, policy, router="least-outstanding", seed=seed, uptime=uptime)
    static = simulate(wl, [dep] * peak, policy, router="least-outstanding", seed=seed)
    price_s = (dep.price_per_hour or 0.0) / 3600
    cold = cold_start_s(dep)
    auto_cost = billed_seconds(uptime, auto.makespan_s, cold) * price_s
    static_cost = peak * static.makespan_s * price_s
    return AutoscaleResult(window_s, counts, peak, cold, scale_down_delay_s, uptime, auto_cost, static_cost,
                           max(auto.makespan_s, static.makespan_s), summarize(auto, slos), summarize(static, slos))
