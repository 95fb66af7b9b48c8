"""HyGen's latency budget for offline work (P140): offline requests fill a step only while it stays short.

While an online request runs or waits on the replica, the scheduler gives offline requests
(the workload's ``online`` flag false) only the prefill tokens that keep the step's predicted
time within the budget, and admits a new offline request only if the decode steps after it
stay within it too. Online requests are scheduled as before, ahead of offline ones (priority
scheduling). With no online request on the replica there is nothing to protect: offline work
runs as the engine runs it. The prediction is the simulator's own step cost, as HyGen's is
its batch-latency predictor. Simulation only: no engine we launch runs this rule.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from inferplan.perf.step_cost import BatchShape

if TYPE_CHECKING:
    from inferplan.sim.state import ReplicaState

StepSeconds = Callable[[BatchShape], float]


class StepBudget:
    """The step-time budget (seconds) and the predictor it is checked with."""

    __slots__ = ("seconds", "predict")

    def __init__(self, seconds: float, predict: StepSeconds) -> None:
        self.seconds = seconds
        self.predict = predict

    def prefill_room(self, scheduled: int, decodes: int, ctx_tokens: int, want: int, chunked: bool) -> int:
        """How many of ``want`` more prefill tokens fit beside ``scheduled`` prefill tokens and ``decodes`` decoding
        rows reading ``ctx_tokens`` keys (0: none). Without chunked prefill a prompt fits whole or not at all."""

        def fits(k: int) -> bool:
            return self.predict(BatchShape.prefill_beside_decodes(scheduled + k, decodes, ctx_tokens)) <= self.seconds

        if fits(want):
            return want
        if not chunked or not fits(1):
            return 0
        lo, hi = 1, want  # fits(lo), not fits(hi): the step time grows with the tokens
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (mid, hi) if fits(mid) else (lo, mid)
        return lo

    def decode_fits(self, decodes: int, ctx_tokens: int) -> bool:
        """Whether a decode step of ``decodes`` rows reading ``ctx_tokens`` keys stays within the budget."""
        return self.predict(BatchShape.decodes(decodes, ctx_tokens)) <= self.seconds


def cap_offline_prefills(budget: StepBudget, online: npt.NDArray[np.bool_], want: npt.NDArray[np.int64],
                         computed: npt.NDArray[np.int64], prompt: npt.NDArray[np.int64]) -> None:
    """Running rows' tokens this step (``want``, changed in place): each offline row still prefilling gets what
    fits in the budget after the online rows' tokens and the decodes, in batch order."""
    prefilling = (want > 1) | (computed < prompt)
    offline = ~online & prefilling & (want > 0)
    if not offline.any():
        return
    decodes = int(np.count_nonzero(~prefilling & (want > 0)))
    ctx = int(computed.sum())
    scheduled = int(want[online & prefilling].sum())
    for i in np.flatnonzero(offline).tolist():
        room = budget.prefill_room(scheduled, decodes, ctx, int(want[i]), chunked=True)
        want[i] = room
        scheduled += room


def offline_budget(rep: ReplicaState) -> StepBudget | None:
    """The replica's budget for offline work while an online request runs or waits first in its queue (with
    priority scheduling, any waiting online request is first), else None: nothing to protect."""
    step_budget = rep.step_budget
    if step_budget is None:
        return None
    online, b = rep.table.wl.online, rep.batch
    if (b.n and bool(online[b.rid[: b.n]].any())) or (len(rep.waiting) and bool(online[rep.waiting.peek()])):
        return step_budget
    return None
