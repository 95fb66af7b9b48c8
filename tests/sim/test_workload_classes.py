"""Online and offline classes in one run: deadlines judged beside the SLOs, per-class figures, and HyGen's
step budget for offline work (P140)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from inferplan.errors import InputError
from inferplan.perf.step_cost import BatchShape
from inferplan.runs import SimulationConfig, scheduling_by_priority, simulate_config
from inferplan.sim.metrics import LogHistogram
from inferplan.sim.policies.offline_budget import StepBudget
from inferplan.sim.slo import parse_slos
from inferplan.sim.summary import measured_summary
from inferplan.sim.summary_types import Summary
from inferplan.workload.request import Workload

MIX = "chat:rate=8 + batch:count=2000,deadline=10m"
SLO = "ttft_p90=1s,tpot_p90=50ms"


def test_deadlines_judge_their_requests_and_the_slos_the_others() -> None:
    """Two online requests (TTFT 0.5 s and 2 s) and two offline ones due within 10 s (done after 5 s and 12 s):
    the TTFT p50 over the online pair is 1.25 s, within 1.5 s; the offline class misses its deadline by its
    slower request; half the requests are within their objectives."""
    wl = Workload.build(np.zeros(4), [10] * 4, [2] * 4, deadline_s=[np.inf, np.inf, 10.0, 10.0],
                        class_index=[0, 0, 1, 1], class_names=("chat", "batch"))
    lat = {"ttft": np.array([0.5, 2.0, 4.0, 11.0]), "tpot": np.full(4, 0.01), "e2e": np.array([0.6, 2.1, 5.0, 12.0]),
           "queue": np.zeros(4)}
    s = measured_summary(lat, np.ones(4, dtype=bool), parse_slos("ttft_p50=1.5s"), LogHistogram(), makespan_s=12.0,
                         input_tokens=40, output_tokens=8, num_rejected=0, rejected_by_reason={}, workload=wl)
    (ttft, deadline) = s.slos
    assert ttft.value_s == pytest.approx(1.25) and ttft.met
    assert deadline.slo == "batch done within 10s" and deadline.value_s == 12.0 and not deadline.met
    assert s.slo_attainment == 0.5 and s.slos_met is False


def test_a_deadline_alone_is_an_objective() -> None:
    """No SLOs, only an offline class: the deadline is the run's one check."""
    wl = Workload.build(np.zeros(2), [10, 10], [2, 2], deadline_s=[60.0, 60.0])
    lat = {"ttft": np.array([1.0, 2.0]), "tpot": np.full(2, 0.01), "e2e": np.array([3.0, 4.0]), "queue": np.zeros(2)}
    s = measured_summary(lat, np.ones(2, dtype=bool), (), LogHistogram(), makespan_s=4.0, input_tokens=20,
                         output_tokens=4, num_rejected=0, rejected_by_reason={}, workload=wl)
    assert [(c.slo, c.value_s, c.met) for c in s.slos] == [("workload done within 1m", 4.0, True)]
    assert s.slos_met is True and s.slo_attainment == 1.0


def _run(workload: str, budget: float | None = None, **changes: object) -> Summary:
    cfg = SimulationConfig(workload=workload, slo=SLO, offline_budget_s=budget)
    return simulate_config(replace(cfg, **changes))[1]


def test_a_mixed_run_reports_each_class_and_survives_its_json() -> None:
    s = _run(MIX)
    chat, batch = s.classes
    assert (chat.name, chat.online, batch.name, batch.online) == ("chat", True, "batch", False)
    assert chat.num_requests + batch.num_requests == s.num_requests
    assert batch.deadline_s == 600 and batch.deadline_met and batch.last_finish_s is not None
    assert batch.last_finish_s <= 600 and chat.deadline_s is None and chat.deadline_met is None
    # the priority rule ran (the default for classes of different priority): online requests start first
    assert chat.ttft_p90_s is not None and batch.ttft_p90_s is not None and chat.ttft_p90_s < 1 < batch.ttft_p90_s
    assert Summary.from_json(s.to_json(), "test").classes == s.classes


def test_priority_is_the_default_only_where_classes_differ() -> None:
    mixed = SimulationConfig(workload=MIX).build_workload()
    assert scheduling_by_priority(SimulationConfig(workload=MIX), mixed)
    assert not scheduling_by_priority(SimulationConfig(workload=MIX, priority_scheduling=False), mixed)
    assert not scheduling_by_priority(SimulationConfig(), SimulationConfig().build_workload())


def test_the_step_budget_keeps_online_decodes_faster_and_the_batch_in_time() -> None:
    """Offline work beside chat slows its decode steps; HyGen's budget gives back online TPOT and the batch
    still finishes within its deadline."""
    plain, budgeted = _run(MIX), _run(MIX, budget=0.03)
    assert budgeted.classes[0].tpot_p90_s is not None and plain.classes[0].tpot_p90_s is not None
    assert budgeted.classes[0].tpot_p90_s < 0.8 * plain.classes[0].tpot_p90_s
    assert budgeted.classes[1].deadline_met
    assert budgeted.num_finished == plain.num_finished == plain.num_requests


def test_the_budget_changes_nothing_without_online_work() -> None:
    offline = "batch:count=300,deadline=1h"
    assert _run(offline).to_json() == _run(offline, budget=0.001).to_json()


def test_the_budget_needs_priority_scheduling() -> None:
    with pytest.raises(InputError, match="needs priority scheduling"):
        _run(MIX, budget=0.03, priority_scheduling=False)
    with pytest.raises(InputError, match="positive"):
        _run(MIX, budget=-1.0)


def test_prefill_room_is_the_closed_form_of_a_linear_step_time() -> None:
    """Step time 10 ms + 10 us per prefill token + 0.1 ms per decoding row: within 20.005 ms beside 10 decodes
    and 100 tokens already scheduled, floor((20.005 - 10 - 1) ms / 10 us) - 100 = 800 more tokens fit."""
    budget = StepBudget(0.020005, lambda s: 0.010 + 1e-5 * s.prefill_tokens + 1e-4 * s.num_decodes)
    assert budget.prefill_room(100, 10, 0, 2000, chunked=True) == 800
    assert budget.prefill_room(100, 10, 0, 500, chunked=True) == 500  # all of it fits
    assert budget.prefill_room(100, 10, 0, 2000, chunked=False) == 0  # whole or nothing
    assert budget.prefill_room(0, 99, 0, 50, chunked=True) == 10  # 99 decodes leave 0.105 ms: 10 tokens
    assert budget.prefill_room(0, 100, 0, 10, chunked=True) == 0  # 100 decodes alone fill it
    assert budget.decode_fits(100, 0) and not budget.decode_fits(101, 0)
    assert budget.predict(BatchShape.decodes(1, 0)) == pytest.approx(0.0101)


def test_jains_index_over_the_classes_attainment_by_hand() -> None:
    """Attainments 1.0 and 0.5: (1.5)^2 / (2 x 1.25) = 0.9; equal ones give 1; one class gives none."""
    s = _run(MIX)
    half = replace(s, classes=(replace(s.classes[0], slo_attainment=1.0), replace(s.classes[1], slo_attainment=0.5)))
    assert half.fairness_jain == pytest.approx(0.9)
    even = replace(s, classes=tuple(replace(c, slo_attainment=0.8) for c in s.classes))
    assert even.fairness_jain == pytest.approx(1.0)
    assert replace(s, classes=s.classes[:1]).fairness_jain is None
    assert s.to_json()["fairness_jain"] == s.fairness_jain


def test_a_minimum_throughput_is_judged_over_the_class() -> None:
    """Two batch requests arriving at 0 and 2 s with 10 output tokens each, at least 2 tokens/s: all done by
    10 s (20 tokens / 2). Done at 5 s and 2 + 9 = 11 s: the class took 11 s of its 10, missed; at 2 + 7 = 9 s, met."""
    wl = Workload.build([0.0, 2.0], [10, 10], [10, 10], deadline_s=[10.0, 8.0], class_names=("batch",),
                        class_throughput=(2.0,))
    lat = {"ttft": np.array([1.0, 1.0]), "tpot": np.full(2, 0.1), "e2e": np.array([5.0, 9.0]), "queue": np.zeros(2)}
    s = measured_summary(lat, np.ones(2, dtype=bool), (), LogHistogram(), makespan_s=11.0, input_tokens=20,
                         output_tokens=20, num_rejected=0, rejected_by_reason={}, workload=wl)
    [check] = s.slos
    assert check.slo == "batch done within 10s (at least 2 tokens/s)" and check.value_s == 11.0 and not check.met
    lat["e2e"] = np.array([5.0, 7.0])
    s = measured_summary(lat, np.ones(2, dtype=bool), (), LogHistogram(), makespan_s=9.0, input_tokens=20,
                         output_tokens=20, num_rejected=0, rejected_by_reason={}, workload=wl)
    assert s.slos[0].value_s == 9.0 and s.slos[0].met and s.slo_attainment == 1.0
