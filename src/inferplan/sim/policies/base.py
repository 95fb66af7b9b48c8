"""What a scheduling policy is: a small object whose ``schedule`` returns a frozen StepPlan."""

from __future__ import annotations

from typing import NamedTuple, Protocol

import numpy as np
import numpy.typing as npt

from inferplan.sim.state import ReplicaState


class StepPlan(NamedTuple):
    """One step's decision: tokens per running row (0 = not scheduled) and who was preempted.

    Immutable; a NamedTuple because one is built per step.
    """

    rids: npt.NDArray[np.int64]  # request id of each running row
    num_new: npt.NDArray[np.int64]  # tokens scheduled per row
    num_computed_before: npt.NDArray[np.int64]
    preempted: tuple[int, ...]
    token_budget_left: int
    total_tokens: int  # tokens scheduled in this step
    num_running: int = 0  # rows that were running before this step's admissions (they come first)
    running_decode: bool = False  # nothing was preempted and each of those rows decodes one token past its prompt

    @property
    def num_scheduled_tokens(self) -> dict[int, int]:
        """{request_id: tokens} for scheduled requests, as vLLM's SchedulerOutput reports it."""
        return {int(r): int(k) for r, k in zip(self.rids, self.num_new, strict=True) if k > 0}

    @property
    def is_empty(self) -> bool:
        return self.total_tokens == 0


class SchedulerPolicy(Protocol):
    """An engine's scheduling rules. ``schedule`` mutates the replica's queues and returns the plan."""

    name: str

    def schedule(self, rep: ReplicaState) -> StepPlan: ...

    def reject_reasons(self, rep: ReplicaState) -> npt.NDArray[np.int8]:
        """Per request of the replica's table: 0 if it can ever run there, else a RejectReason (its value)."""
        ...
