"""The cluster as a value (its shapes and what it refuses) and the event loop's order of events at one time."""

from __future__ import annotations

import numpy as np
import pytest

from inferplan.api import build_deployment
from inferplan.perf.step_costs import StepCosts
from inferplan.sim.cluster import Cluster, SimOptions
from inferplan.sim.loop import simulate
from inferplan.sim.policies import get_policy
from inferplan.workload.request import Workload

H100 = build_deployment("llama-3.1-8b", "h100-sxm")
A100 = build_deployment("llama-3.1-8b", "a100-80gb")


def test_constructors_number_replicas_as_the_simulator_does() -> None:
    plain = Cluster.replicas([H100, H100])
    assert plain.roles == ("both", "both") and plain.front == (H100, H100) and not plain.is_disaggregated
    pd = Cluster.disaggregated([H100], [A100, A100])
    assert pd.roles == ("prefill", "decode", "decode") and pd.handoff == ((0, 1),)
    assert pd.crosses_nodes(0)  # decode on another device type: another machine
    assert not Cluster.disaggregated([H100], [H100]).crosses_nodes(0)
    mixed = Cluster.mixed([H100], [A100], [H100, H100], [[1]])
    assert mixed.roles == ("prefill", "both", "decode", "decode") and mixed.front == (H100, A100)
    assert mixed.deployments == (H100, A100, H100, H100)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: Cluster(), "at least one replica"),
        (lambda: Cluster(prefill=(H100,), handoff=((0,),)), "prefill pool needs a decode pool"),
        (lambda: Cluster.mixed([H100, H100], [], [H100], [[0]]), "handoff"),
        (lambda: Cluster.mixed([H100], [], [H100], [[1]]), "outside 0..0"),
        (lambda: Cluster.replicas([H100], uptime=[((0.0, 1.0),), ((0.0, 1.0),)]), "uptime lists 2"),
    ],
)
def test_a_cluster_that_cannot_run_is_refused_when_built(build: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build()  # type: ignore[operator]


def test_uptime_changes_list_the_accepting_replicas_from_each_time_on() -> None:
    cl = Cluster.replicas([H100, H100], uptime=[((0.0, 10.0),), ((5.0, 20.0),)])
    assert cl.uptime_changes() == [(0.0, [0]), (5.0, [0, 1]), (10.0, [1]), (20.0, [])]


def test_a_step_ending_at_an_arrivals_time_is_handled_first() -> None:
    """Request 1 arrives exactly when request 0's prefill step ends. The step end is handled first and
    the replica starts its next step at once, so request 1 is not in that step: it is first scheduled
    one step later. (Handled the other way round, it would be scheduled at the arrival time itself.)"""
    alone = Workload.build(np.array([0.0]), np.array([512]), np.array([8]))
    for leap in (True, False):
        first = simulate(alone, Cluster.replicas([H100]), get_policy("vllm"), options=SimOptions(leap=leap))
        t_step = float(first.table.t_first_token[0])
        wl = Workload.build(np.array([0.0, t_step]), np.array([512, 512]), np.array([8, 8]))
        res = simulate(wl, Cluster.replicas([H100]), get_policy("vllm"), options=SimOptions(leap=leap))
        t = res.table
        assert t.t_first_token[0] == t_step and t.arrival[1] == t_step
        assert t.t_first_scheduled[1] > t_step, leap


def test_kept_step_costs_give_the_same_run_as_fresh_ones() -> None:
    """A capacity search keeps one StepCost per deployment across its probes (its decode table grown by the
    first): the second run of a larger batch through the same kept costs matches a run on fresh ones."""
    dep = build_deployment("llama-3.1-8b", "a100-80gb")
    costs = StepCosts()
    assert costs.get(dep) is costs.get(dep)
    assert costs.get(build_deployment("llama-3.1-8b", "h100-sxm")) is not costs.get(dep)
    rng = np.random.default_rng(3)

    def run(rate: float, kept: StepCosts | None) -> tuple[np.ndarray, np.ndarray]:
        n = 300
        wl = Workload.build(np.cumsum(rng.exponential(1 / rate, n)), rng.integers(50, 900, n), rng.integers(5, 300, n))
        res = simulate(wl, Cluster.replicas([dep]), costs=kept)
        return res.table.t_first_token, res.table.t_finish

    run(2.0, costs)  # small batches: the kept table covers them only
    state = rng.bit_generator.state
    kept = run(40.0, costs)
    rng.bit_generator.state = state
    fresh = run(40.0, None)
    assert all(np.array_equal(a, b, equal_nan=True) for a, b in zip(kept, fresh, strict=True))
