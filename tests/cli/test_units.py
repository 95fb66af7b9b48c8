"""Small pieces behind what the CLI prints: the autoscale recommendation, the profile plausibility check."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from inferplan.measure.microbench import implausible
from inferplan.perf.profile import DeviceProfile
from inferplan.plan.autoscale import AutoscaleResult
from inferplan.plan.reactive_plan import ReactivePool, ReactiveResult
from inferplan.sim.reactive import ScalingPolicy
from tests.sim.summaries import sample_summary


def _auto(auto_cost: float, static_cost: float, auto: dict[str, Any], static: dict[str, Any]) -> AutoscaleResult:
    return AutoscaleResult(window_s=900, replicas_per_window=(1, 2), static_replicas=2, cold_start_s=80,
                           scale_down_delay_s=300, uptime=(), auto_cost=auto_cost, static_cost=static_cost,
                           duration_s=3600, auto_summary=sample_summary(**auto),
                           static_summary=sample_summary(**static))


def test_a_negative_saving_at_lower_attainment_recommends_static() -> None:
    """The README example printed a 'saving' of -0.2% at lower attainment with no recommendation."""
    r = _auto(1.002, 1.0, {"slos_met": False, "slo_attainment": 0.97}, {"slos_met": True, "slo_attainment": 0.99})
    assert r.recommendation().startswith("static peak provisioning: autoscaling saves nothing here (-0.2%)")
    assert r.to_dict()["recommendation"] == r.recommendation()


def test_a_real_saving_that_keeps_the_slos_recommends_autoscaling() -> None:
    r = _auto(0.6, 1.0, {"slos_met": True, "slo_attainment": 0.99}, {"slos_met": True, "slo_attainment": 0.995})
    assert r.recommendation() == "autoscale: it saves 40.0% against static peak provisioning and meets every SLO"


def test_a_saving_that_misses_an_slo_is_not_recommended() -> None:
    r = _auto(0.6, 1.0, {"slos_met": False, "slo_attainment": 0.9}, {"slos_met": True, "slo_attainment": 0.99})
    assert "misses an SLO (attainment 90.0% vs 99.0%)" in r.recommendation()


def test_a_reactive_hpa_that_saves_and_keeps_the_slos_is_recommended_when_the_schedule_does_not() -> None:
    """The per-window schedule needs tomorrow's load; an HPA that meets the SLOs for less than static is what to run
    when the schedule misses an SLO or costs more."""
    pool = ReactivePool("1x h100", ScalingPolicy(target=24.0, max_replicas=4, cold_start_s=80.0), 1)
    react = ReactiveResult((pool,), 0.7, sample_summary(slos_met=True, slo_attainment=0.99), ((0.0, 1),),
                           "least-outstanding")
    r = replace(_auto(0.6, 1.0, {"slos_met": False, "slo_attainment": 0.9}, {"slos_met": True}), reactive=react)
    assert r.recommendation() == ("reactive autoscaling (HPA on concurrency): it saves 30.0% against static peak "
                                  "provisioning, meets every SLO, and needs no forecast")
    assert r.to_dict()["reactive"]["pools"][0]["target"] == 24.0
    cheaper_schedule = replace(r, auto_summary=sample_summary(slos_met=True, slo_attainment=0.99))
    assert cheaper_schedule.recommendation().startswith("autoscale: it saves 40.0%")


def test_a_busy_machine_overhead_is_flagged() -> None:
    """92 ms per layer (measured on a busy machine) made a two-hour TTFT prediction; now it is a warning."""
    busy = DeviceProfile(per_layer_overhead_s=0.092, step_overhead_s=0.003)
    warnings = implausible(busy)
    assert len(warnings) == 1 and warnings[0].startswith("per layer overhead measured 92.00 ms")
    assert implausible(DeviceProfile(per_layer_overhead_s=0.0002, step_overhead_s=0.003)) == []


def test_simulate_help_names_every_router_and_policy() -> None:
    """The --router, --policy and --engine help lists are written out (the CLI must not import the simulator to
    start); this keeps them equal to the registries a new router or policy is added to."""
    import contextlib
    import io
    import re

    from inferplan.cli import run
    from inferplan.sim.policies import POLICIES
    from inferplan.sim.routers import ROUTERS
    from inferplan.specs.catalog import engine_catalog

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert run(["simulate", "--help"]) == 0
    text = " ".join(out.getvalue().split())
    for option, names in (("--router", ROUTERS), ("--policy", POLICIES), ("--engine", engine_catalog())):
        listed = re.search(rf"{option} <str>\s+(?:[a-z ,']+: )?([a-z, -]+?)\s+(?:\[default|\(|--)", text)
        assert listed, (option, text[:400])
        assert {n.strip() for n in listed.group(1).split(",")} == set(names), (option, listed.group(1))
