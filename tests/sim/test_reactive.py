"""The reactive autoscaler (Kubernetes' HPA rule) inside the simulation: its arithmetic by hand, its timing
against the metric delay, the cold start and the stabilization window, billing, and scale to zero."""

from __future__ import annotations

import numpy as np
import pytest

from inferplan.api import build_deployment
from inferplan.errors import InputError
from inferplan.sim.cluster import Cluster, SimOptions
from inferplan.sim.loop import simulate
from inferplan.sim.reactive import STARTING, UP, ScalingPolicy, _Pool
from inferplan.workload.request import Workload

DEP = build_deployment("llama-3.1-8b", "h100-sxm")


def _policy(**changes: object) -> ScalingPolicy:
    values: dict[str, object] = {"target": 10.0, "max_replicas": 6, "cold_start_s": 60.0} | changes
    return ScalingPolicy(**values)  # type: ignore[arg-type]


def test_the_hpa_rule_by_hand() -> None:
    """ceil(ready x value / target), clamped; no change within the 10% tolerance; scaling down takes the highest
    recommendation of the last 300 s; the value read is the one sampled metric_delay_s earlier."""
    pool = _Pool((0, 1, 2, 3, 4, 5), _policy())
    states = [UP, UP, 0, 0, 0, 0]
    pool.samples.append((0.0, 25.0, 2))
    assert pool.desired(10.0, states) is None  # the sample is not 15 s old yet
    assert pool.desired(15.0, states) == 5  # ceil(2 x 25 / 10)
    pool.samples.append((15.0, 10.5, 2))
    assert pool.desired(30.0, states) == 2  # 1.05 is within the tolerance: stay
    pool.samples.append((30.0, 2.0, 2))
    assert pool.desired(45.0, states) == 2  # 1 recommended, but 5 and 2 are in the window: the highest, capped at now
    assert pool.desired(400.0, states) == 1  # the window has moved past the higher ones
    pool.samples.append((400.0, 100.0, 2))
    assert pool.desired(415.0, states) == 6  # 20 wanted, clamped to max


@pytest.mark.parametrize("bad", [{"metric": "tokens"}, {"target": 0.0}, {"min_replicas": 3, "max_replicas": 2},
                                 {"initial_replicas": 9}])
def test_bad_policies_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(InputError):
        _policy(**bad)


def _step_load() -> Workload:
    """1 req/s for 300 s, 30 req/s for 300 s, then 1 req/s for 900 s: chat-sized requests."""
    rng = np.random.default_rng(0)
    times = np.concatenate([np.arange(0, 300, 1.0), np.arange(300, 600, 1 / 30), np.arange(600, 1500, 1.0)])
    return Workload.build(times, rng.integers(500, 1500, times.size), rng.integers(100, 300, times.size))


def test_scaling_follows_the_load_late_by_the_delays_and_is_billed_as_it_ran() -> None:
    wl = _step_load()
    pol = _policy(target=16.0, max_replicas=4, cold_start_s=60.0)
    res = simulate(wl, Cluster.replicas([DEP] * 4), router="least-outstanding",
                   options=SimOptions(scaling=((tuple(range(4)), pol),)))
    sc = res.scaler
    assert sc is not None and sc.timeline[0] == (0.0, 1)
    first_up = next(t for t, n in sc.timeline if n > 1)
    # the jump at 300 s is seen a sync and a scrape later, no sooner
    assert 300.0 + pol.metric_delay_s <= first_up <= 300.0 + 3 * pol.sync_s + pol.metric_delay_s
    peak = max(n for _, n in sc.timeline)
    assert peak >= 2
    last_down = max(t for t, n in sc.timeline if n < peak)
    assert last_down >= 600.0 + pol.scale_down_window_s  # not before the stabilization window after the drop
    # replicas asked for at first_up accepted nothing before their cold start
    later = (res.table.replica > 0) & (wl.arrival_s < first_up + pol.cold_start_s)
    assert not later.any()
    # billing: the integral of the billed-replica timeline up to the run's end
    times = [t for t, _ in sc.timeline] + [res.makespan_s]
    integral = sum(n * (b - a) for (a, n), b in zip(sc.timeline, times[1:], strict=True))
    assert sum(sc.billed_s) == pytest.approx(integral)
    assert np.isfinite(res.table.t_finish).all()


def test_scale_to_zero_holds_the_first_request_for_a_cold_start() -> None:
    """min 0: nothing runs until the first arrival; it and the next wait out the 60 s cold start of the one
    replica started, then are served; the controller does not let go of a replica that holds requests."""
    wl = Workload.build([0.0, 0.5, 300.0], [200, 200, 200], [20, 20, 20])
    pol = _policy(min_replicas=0, max_replicas=2, target=4.0, cold_start_s=60.0)
    res = simulate(wl, Cluster.replicas([DEP] * 2), router="least-outstanding",
                   options=SimOptions(scaling=(((0, 1), pol),)))
    t = res.table
    assert np.isfinite(t.t_finish).all()
    ttft = t.t_first_token - t.arrival
    assert 60.0 <= ttft[0] < 61.0 and 59.5 <= ttft[1] < 60.5  # both wait for the one replica started
    assert res.scaler is not None and res.scaler.timeline[0] == (0.0, 0)
    assert res.scaler.states.count(STARTING) == 0


def test_an_autoscaled_run_costs_what_its_replicas_were_billed() -> None:
    from inferplan.sim.summary import summarize

    wl = _step_load()
    res = simulate(wl, Cluster.replicas([DEP] * 4), router="least-outstanding",
                   options=SimOptions(scaling=((tuple(range(4)), _policy(target=16.0, max_replicas=4)),)))
    s = summarize(res)
    assert res.scaler is not None and s.sim is not None and s.sim.cost_per_hour is not None
    price = DEP.price_per_hour or 0.0
    assert s.sim.cost_per_hour == pytest.approx(sum(res.scaler.billed_s) * price / res.makespan_s)
    assert s.sim.cost_per_hour < 4 * price  # fewer than all four were on for the whole run
