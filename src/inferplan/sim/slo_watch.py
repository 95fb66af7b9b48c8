"""Stopping a simulation once its SLOs are certainly missed: capacity probes and verifications that fail
need not run to the end.

An SLO ``metric_pP <= T`` over M requests is missed for sure once ``M - floor(P/100 (M - 1))`` of
them certainly exceed T: the percentile (numpy's linear interpolation) then lies at or above a
sorted value that exceeds T. A request certainly exceeds T before it is done: a TTFT or E2E
still open at ``now`` is at least ``now - arrival``, and an open TPOT at least ``(now - first
token) / (outputs - 1)``, where ``now`` is a time up to which the table is complete (a leap
applies its rows' tokens only when it ends, so the loop passes the start of the oldest leap
in flight). Any rejection misses the SLOs too (they count only when nothing was
rejected). ITL objectives are read from the whole run's histogram and never stop a run early.
"""

from __future__ import annotations

import math

import numpy as np

from inferplan.sim.slo import SLO
from inferplan.sim.state import REJECTED, RequestTable


class SloWatch:
    """``missed(table, now)``: whether the run can no longer meet ``slos``."""

    def __init__(self, slos: tuple[SLO, ...], table: RequestTable) -> None:
        self._slos = tuple(s for s in slos if s.metric != "itl")
        n = len(table)
        multi = int(np.count_nonzero(table.output > 1))  # TPOT is defined for these only
        self._allowed = {s: self._violations_allowed(s, multi if s.metric == "tpot" else n) for s in self._slos}

    @staticmethod
    def _violations_allowed(slo: SLO, population: int) -> int:
        """Most requests over the threshold with the percentile still within it (0 of none)."""
        return population - math.floor(slo.percentile / 100 * (population - 1)) - 1

    def missed(self, t: RequestTable, now: float) -> bool:
        """Whether the run can no longer meet its SLOs, from what happened by ``now`` (every token and
        finish before ``now`` is in the table)."""
        if np.count_nonzero(t.status == REJECTED):
            return True
        arrived = t.arrival <= now
        for slo in self._slos:
            if self._certain_violations(slo, t, now, arrived) > self._allowed[slo]:
                return True
        return False

    @staticmethod
    def _certain_violations(slo: SLO, t: RequestTable, now: float, arrived: np.ndarray) -> int:
        """Requests whose ``slo.metric`` certainly exceeds the threshold (lower bounds for open ones;
        the frontend time, added to TTFT and E2E, is left out: it only adds)."""
        limit = slo.threshold_s
        with np.errstate(invalid="ignore", divide="ignore"):
            if slo.metric == "ttft":
                lower = np.where(np.isnan(t.t_first_token), now, t.t_first_token) - t.arrival
            elif slo.metric == "e2e":
                lower = np.where(np.isnan(t.t_finish), now, t.t_finish) - t.arrival
            else:  # tpot, of requests with a first token and more than one output
                done = np.where(np.isnan(t.t_finish), now, t.t_finish)
                lower = np.where(t.output > 1, (done - t.t_first_token) / (t.output - 1), np.nan)
        return int(np.count_nonzero(arrived & (lower > limit)))
