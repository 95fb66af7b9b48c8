"""Power caps and power budgets: the clock a cap leaves by the cube law, what it slows (compute, not memory),
the fleet program within a budget by hand, and a plan under a budget (POLCA, P168)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from inferplan.api import build_deployment
from inferplan.deploy.fleet_files import write_deploy
from inferplan.errors import InputError
from inferplan.perf.power import MIN_CLOCK, busy_power_w, capped, clock_ratio
from inferplan.perf.step_cost import BatchShape, StepCost
from inferplan.plan.power_budget import FleetObjective, PowerBudget
from inferplan.plan.search import PlanRequest, plan
from inferplan.report.plan_report import pareto, why_chosen

H100 = build_deployment("llama-3.1-8b", "h100-sxm")  # 70 W idle, 700 W peak


def test_the_clock_under_a_cap_follows_the_cube_law() -> None:
    """385 W on a 70-700 W device leaves half the dynamic power: the clock at 0.5 ** (1/3) = 0.794."""
    dev = capped(H100.device, 385)
    assert clock_ratio(dev) == pytest.approx(0.5 ** (1 / 3))
    assert clock_ratio(H100.device) == 1.0 and clock_ratio(capped(H100.device, 900)) == 1.0
    assert clock_ratio(capped(H100.device, 70.5)) == MIN_CLOCK
    assert busy_power_w(dev) == 385 and busy_power_w(H100.device) == 700
    with pytest.raises(InputError, match="at or below h100-sxm's idle power"):
        capped(H100.device, 60)


def test_a_cap_slows_compute_bound_prefill_not_memory_bound_decode() -> None:
    free, cap = StepCost(H100), StepCost(replace(H100, device=capped(H100.device, 385)))
    r = 0.5 ** (1 / 3)
    assert cap.linear_flops_per_s == pytest.approx(free.linear_flops_per_s * r)
    assert cap.prefill_seconds(8192) > 1.15 * free.prefill_seconds(8192)  # compute-bound: most of 1/r = 1.26x
    assert cap.decode_seconds(8, 1000) == pytest.approx(free.decode_seconds(8, 1000))  # weights and KV reads
    # the busy power is held to the cap: a decode step (same time) takes (385 - 70) / (700 - 70) of its dynamic energy
    step = BatchShape.decodes(8, 8000)
    (t0, j0), (t1, j1) = free.cost(step), cap.cost(step)
    idle = t0 * 70
    assert t1 == pytest.approx(t0) and (j1 - idle) == pytest.approx((j0 - idle) * 315 / 630)


def test_a_capped_device_keys_its_results_apart_and_an_uncapped_one_as_before() -> None:
    assert "power_cap_w" not in H100.fingerprint()["device"]  # type: ignore[operator]
    capped_dep = replace(H100, device=capped(H100.device, 490))
    assert capped_dep.fingerprint()["device"]["power_cap_w"] == 490  # type: ignore[index]
    assert "power cap 490 W" in capped_dep.describe()


def test_the_fleet_program_within_a_power_budget_by_hand() -> None:
    """10 req/s; type A: $1/h, 700 W, 10 req/s each; type B: $0.60/h, 100 W, 3 req/s each. Free: one A ($1). Within
    500 W: four B ($2.40, 400 W). Within 300 W: none, and the least power that carries it is four B's 400 W."""
    rates, caps = np.array([10.0]), np.array([[10.0], [3.0]])  # (types, buckets)
    cost, penalty = FleetObjective.cost(np.array([1.0, 0.6])), np.zeros(2)
    free = PowerBudget(np.array([700.0, 100.0]), None, cost).solve(rates, caps, penalty)
    assert free.replicas == (1, 0)
    within = PowerBudget(np.array([700.0, 100.0]), 500.0, cost)
    fleet = within.solve(rates, caps, penalty)
    assert fleet.replicas == (0, 4) and fleet.cost_per_hour == pytest.approx(2.4)
    assert within.drawn(fleet.replicas) == 400
    note = within.notes(rates, caps, penalty)[0]
    assert note.startswith("the power budget (500 W) binds: without it the program's fleet costs $1.00/h and "
                           "draws 700 W")
    with pytest.raises(InputError, match="the least power that does is 400 W"):
        PowerBudget(np.array([700.0, 100.0]), 300.0, cost).solve(rates, caps, penalty)


def test_a_plan_under_a_power_budget_caps_a_large_device_rather_than_buy_small_ones(tmp_path: Path) -> None:
    """Chat at 20 req/s on H100s: one (700 W) unbudgeted; within 600 W the same H100 capped at 490 W, verified, for
    the same price: decode, bound by memory, barely slows under the cap."""
    req = PlanRequest(model="llama-3.1-8b", devices=("h100-sxm",), workload="chat", rate=20.0, duration_s=300,
                      executor="serial", probe_requests=200)
    free = plan(req)
    budgeted = plan(replace(req, power_budget_w=600.0))
    power = sum(t.power_w * n for t, n in zip(budgeted.types, budgeted.fleet.replicas, strict=True))
    assert budgeted.verified and power <= 600
    assert power < sum(t.power_w * n for t, n in zip(free.types, free.fleet.replicas, strict=True))
    chosen = [t for t, n in zip(budgeted.types, budgeted.fleet.replicas, strict=True) if n]
    assert any(t.dep.device.power_cap_w == 490 for t in chosen)
    assert budgeted.fleet.cost_per_hour <= 1.5 * free.fleet.cost_per_hour
    launch = write_deploy(budgeted, tmp_path)[0].read_text()
    assert "sudo nvidia-smi -i GPU_IDS -pl 490" in launch


def test_the_energy_objective_counts_idle_power_per_replica_and_busy_power_per_request() -> None:
    """3.9 req/s. A: $1/h, 50 W idle, 500 W busy, 20 req/s each; B: $0.60/h, 40 W idle, 100 W busy, 2 req/s each.
    One A draws 50 + 3.9/20 x 450 = 137.75 W; two B's 2 x 40 + 3.9/2 x 60 = 197 W, though their peak is 200 W
    to A's 500 W: by energy, and by cost+energy at $0.20/kWh ($1.03/h against $1.24/h), A; by cost alone, A too."""
    rates, caps = np.array([3.9]), np.array([[20.0], [2.0]])
    dollars, idle, busy = np.array([1.0, 0.6]), np.array([50.0, 40.0]), np.array([500.0, 100.0])
    energy = FleetObjective("energy", dollars, idle, busy, 0.2)
    per_replica, per_share = energy.weights(rates, caps)
    assert per_replica.tolist() == [50.0, 40.0]
    assert per_share is not None and per_share[0].tolist() == pytest.approx([3.9 / 20 * 450, 3.9 / 2 * 60])
    fleet = PowerBudget(busy, None, energy).solve(rates, caps, np.zeros(2))
    assert fleet.replicas == (1, 0) and fleet.cost_per_hour == 1.0  # reported in dollars, whatever is minimized
    assert energy.score(fleet, [1, 0], rates, caps) == pytest.approx(137.75)
    assert energy.score(fleet, [0, 2], rates, caps) == pytest.approx(80.0 + 137.75 - 50.0)  # idle for B, A's split
    both = FleetObjective("cost+energy", dollars, idle, busy, 0.2)
    assert both.score(fleet, [1, 0], rates, caps) == pytest.approx(1.0 + 0.13775 * 0.2)
    assert both.weights(rates, caps)[0].tolist() == pytest.approx([1.0 + 0.05 * 0.2, 0.6 + 0.04 * 0.2])
    # a budget of 300 W at full load rules A out: the program then takes B's two for least energy
    assert PowerBudget(busy, 300.0, energy).solve(rates, caps, np.zeros(2)).replicas == (0, 2)


def test_plan_objective_energy_picks_the_fleet_of_least_energy_per_token() -> None:
    """Chat at 20 req/s on H100 or L4: by cost and by energy the planner says why; the energy fleet draws no more
    per token than the cost fleet, and an unknown objective is refused by name."""
    req = PlanRequest(model="llama-3.1-8b", devices=("h100-sxm", "l4"), workload="chat", rate=20.0, duration_s=300,
                      executor="serial", probe_requests=200)
    cheap, green = plan(req), plan(replace(req, objective="energy"))
    assert cheap.verified and green.verified
    assert cheap.summary.sim is not None and green.summary.sim is not None
    energy, cost = green.summary.sim.energy_j_per_output_token, cheap.summary.sim.energy_j_per_output_token
    assert energy is not None and cost is not None and energy <= cost * 1.02
    assert why_chosen(green).startswith("the least energy (idle power per replica, busy power for the load it "
                                        "carries) of the fleets the program weighed (--objective energy)")
    rows = [((float(r["cost_per_hour"]), float(r["energy_j_per_token"]), -float(r["slo_margin_pct"])), r["pareto"])
            for r in pareto(green)]
    assert any(front for _, front in rows) and not all(front for _, front in rows)
    # the margin is the tightest SLO's room: default SLOs ttft_p90=2s and tpot_p90=100ms
    first = pareto(green)[0]
    assert first["slo_margin_pct"] == pytest.approx(100 * min(1 - first["ttft_s"] / 2.0, 1 - first["tpot_s"] / 0.1))
    for p, front in rows:  # on the front exactly when no other row is as good in all three and better in one
        assert front == (not any(all(a <= b for a, b in zip(o, p, strict=True)) and o != p for o, _ in rows))
    with pytest.raises(InputError, match="--objective must be one of cost, energy, cost\\+energy"):
        plan(replace(req, objective="watts"))
