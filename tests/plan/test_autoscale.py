"""Autoscaling: windows, uptime intervals and billing by hand; routing honours uptime; savings vs static peak."""

from __future__ import annotations

import numpy as np
import pytest

from inferplan.api import build_deployment
from inferplan.perf.memory import weights_bytes
from inferplan.plan.autoscale import (
    billed_seconds,
    cold_start_s,
    fleets_per_window,
    plan_autoscale,
    plan_autoscale_fleet,
    replicas_per_window,
    uptime_intervals,
    window_of,
)
from inferplan.sim.cluster import Cluster
from inferplan.sim.loop import simulate
from inferplan.sim.policies import get_policy
from inferplan.sim.routers import PlannedRouter
from inferplan.sim.slo import parse_slos
from inferplan.workload.presets import make_workload
from inferplan.workload.request import Workload


def test_replicas_per_window_by_hand() -> None:
    """Window rates 3/s and 1/s with capacity 1.5/s per replica: 2 and 1 replicas."""
    arrivals = np.concatenate([np.linspace(0, 9.99, 30), np.linspace(10, 19.99, 10)])
    wl = Workload.build(arrivals, [10] * 40, [5] * 40)
    assert replicas_per_window(wl, 1.5, 10.0) == (2, 1)


def test_uptime_merges_windows_and_adds_the_delay() -> None:
    """Replica 1 is wanted in windows 0 and 2 only: two intervals, each extended by the delay."""
    spans = uptime_intervals((2, 1, 2, 1), 100.0, 30.0)
    assert spans[0] == ((0.0, float("inf")),)
    assert spans[1] == ((0.0, 130.0), (200.0, 330.0))


def test_billing_counts_cold_starts_after_time_zero() -> None:
    """Each interval is billed, plus one cold start for every launch after t=0."""
    spans = ((( 0.0, 400.0),), ((100.0, 200.0), (300.0, 500.0)))
    assert billed_seconds(spans, 400.0, 50.0) == 400 + (100 + 50) + (100 + 50)


def test_cold_start_is_placement_weight_load_and_engine_startup() -> None:
    """Llama-3.1-8B bf16 on an A100: 3 s placing the pod, 16 GB at 5 GB/s, and vLLM's start-up: 19 s + 0.51 s per
    billion parameters, plus 20 s compiling afresh (perf/cold_start.py); the image is on the node."""
    dep = build_deployment("llama-3.1-8b", "a100-80gb")
    engine = 19.0 + 0.51 * dep.model.params_total / 1e9 + 20.0
    assert cold_start_s(dep) == pytest.approx(3.0 + weights_bytes(dep) / 5e9 + engine)


def test_requests_only_go_to_replicas_that_are_up() -> None:
    """With uptime intervals, arrivals are routed only to accepting replicas."""
    wl = make_workload("chat", rate=4, duration_s=200, seed=0)
    dep = build_deployment("llama-3.1-8b", "h100-sxm")
    uptime = (((0.0, float("inf")),), ((50.0, 120.0),))
    res = simulate(wl, Cluster.replicas([dep, dep], uptime=uptime), get_policy("vllm"), router="round-robin")
    on_second = res.table.replica == 1
    assert on_second.any()
    assert ((wl.arrival_s[on_second] >= 50.0) & (wl.arrival_s[on_second] < 120.0)).all()


def test_autoscaling_a_daily_cycle_saves_against_static_peak() -> None:
    """A diurnal cycle at 6 req/s on L4s (1.6 req/s each): fewer replicas in the quiet half, cheaper than
    static peak, SLOs met."""
    slos = parse_slos("ttft_p90=2s,tpot_p90=100ms")
    wl = make_workload("diurnal-chat", rate=6, duration_s=1200, seed=0)
    dep = build_deployment("llama-3.1-8b", "l4", weights="fp8")
    r = plan_autoscale(dep, wl, slos, capacity_rps=1.6, window_s=300, scale_down_delay_s=60)
    d = r.to_dict()
    assert max(r.replicas_per_window) > min(r.replicas_per_window)
    assert r.static_replicas == max(r.replicas_per_window)
    assert d["cost_per_day"] < d["static_cost_per_day"] and d["saving_pct"] > 10
    assert d["static"]["slos_met"] and d["autoscaled"]["num_rejected"] == 0


def test_fleets_per_window_by_hand() -> None:
    """Type A ($1/h) serves only short requests at 10/s; type B ($3/h) serves short at 10/s, long at 2/s.
    Short-only window: one A. Short 5/s + long 3/s: two B ($6) beat one A + two B ($7). Empty window:
    one replica of the cheapest type that serves everything (B)."""
    rates = np.array([[5.0, 0.0], [5.0, 3.0], [0.0, 0.0]])
    capacity = np.array([[10.0, 10.0], [0.0, 2.0]])  # (buckets, types)
    counts, shares = fleets_per_window(rates, capacity, np.array([1.0, 3.0]))
    assert counts.tolist() == [[1, 0], [0, 2], [0, 1]]
    assert shares[1, 1].tolist() == [0.0, 1.0]


def test_autoscaling_can_change_device_type_between_windows() -> None:
    """A daily cycle at 6 req/s with an L4 (1.8 req/s, $0.8/h) and an H100 (10 req/s): the busy windows
    buy an H100, the quiet ones L4s; cheaper than static peak provisioning, nothing rejected."""
    slos = parse_slos("ttft_p90=2s,tpot_p90=100ms")
    wl = make_workload("diurnal-chat", rate=6, duration_s=1200, seed=0)
    l4 = build_deployment("llama-3.1-8b", "l4", weights="fp8")
    h100 = build_deployment("llama-3.1-8b", "h100-sxm", weights="fp8")
    r = plan_autoscale_fleet([l4, h100], ["l4", "h100"], np.array([[1.8, 10.0]]), np.zeros(len(wl), dtype=np.int64),
                             wl, slos, window_s=300, scale_down_delay_s=60, router="least-outstanding")
    by_type = dict(zip(r.types, r.replicas_per_window_by_type, strict=True))
    assert set(by_type) == {"l4", "h100"}
    assert any(n == 0 for n in by_type["h100"]) and any(n > 0 for n in by_type["h100"])
    assert any(n > 0 for n in by_type["l4"])
    d = r.to_dict()
    assert d["cost_per_day"] < d["static_cost_per_day"]
    assert d["autoscaled"]["num_rejected"] == 0 and d["static"]["num_rejected"] == 0


def test_the_planned_router_follows_each_windows_shares() -> None:
    """Window 0 plans type 0 only, later windows type 1 only: requests go where their window's plan says."""
    wl = make_workload("chat", rate=2, duration_s=200, seed=0)
    windows = np.minimum(window_of(wl, 100.0), 1)
    shares = np.array([[[1.0, 0.0]], [[0.0, 1.0]]])  # (windows, buckets, types)
    router = PlannedRouter(np.zeros(len(wl), dtype=np.int64), shares, [0, 1], windows)
    dep = build_deployment("llama-3.1-8b", "h100-sxm")
    res = simulate(wl, Cluster.replicas([dep, dep]), get_policy("vllm"), router=router)
    assert np.array_equal(res.table.replica, windows)
