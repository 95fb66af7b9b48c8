"""A load that varies more than chance (a daily peak, a trace's bursts): the fleet sized for the mean misses
at the peak, so the planner's first repair sizes it for the busiest twelfth of the run."""

from __future__ import annotations

import numpy as np
import pytest

from inferplan.plan.colocation import PEAK_WINDOWS, peak_factor
from inferplan.plan.search import PlanRequest, plan
from inferplan.workload.presets import WorkloadSpec
from inferplan.workload.request import Workload


def test_a_steady_stream_has_no_peak_and_a_daily_cycle_does() -> None:
    """chat is Poisson: its busiest window is within chance of the mean. diurnal-chat swings +-60% over the run,
    so its busiest twelfth runs near 1.6x the mean (the average of the sine over the window at its crest)."""
    assert peak_factor(WorkloadSpec(workload="chat", rate=20.0, duration_s=600).build_workload()) == 1.0
    daily = peak_factor(WorkloadSpec(workload="diurnal-chat", rate=20.0, duration_s=3600).build_workload())
    crest = 1 + 0.6 * np.sin(np.pi / PEAK_WINDOWS) / (np.pi / PEAK_WINDOWS)  # a window centred on the crest
    assert daily == pytest.approx(crest, rel=0.1)


def test_offline_work_and_a_single_burst_have_no_peak() -> None:
    """Requests with a deadline are sized by it; arrivals all at one instant are a backlog, not a rate."""
    n = 2400
    arrivals = np.linspace(0, 600, n) ** 2 / 600  # arrivals crowding toward the end: a strong peak...
    offline = Workload.build(arrivals, np.full(n, 100), np.full(n, 10), deadline_s=np.full(n, 3600.0))
    assert peak_factor(offline) == 1.0  # ...but offline
    assert peak_factor(Workload.build(np.zeros(n), np.full(n, 100), np.full(n, 10))) == 1.0


def test_a_daily_cycle_is_planned_for_its_peak_and_verified() -> None:
    """Diurnal chat at 6 req/s on L4s: the fleet for the mean misses through the peak; re-planned for the
    busiest twelfth (about 9.3 req/s), it meets the SLOs."""
    r = plan(PlanRequest(model="llama-3.1-8b", workload="diurnal-chat", rate=6.0, duration_s=1200, devices=("l4",),
                         executor="serial"))
    assert r.verified
    assert r.adjustments[0].startswith("re-planned for the busiest twelfth of the run (9.")
