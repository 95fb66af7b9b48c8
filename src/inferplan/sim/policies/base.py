"""What an engine policy is: a small object whose ``schedule`` returns a frozen StepPlan (``EnginePolicy``)."""

from __future__ import annotations

from typing import NamedTuple, Protocol

import numpy as np
import numpy.typing as npt

from inferplan.perf.deployment import EngineLimits
from inferplan.perf.kv_layout import KVLayout
from inferplan.sim.state import ReplicaState, RequestTable


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


class EnginePolicy(Protocol):
    """An engine's scheduling rules: everything a replica asks of them.

    ``state_for`` builds the replica's state once (the engine's limits with the policy's own
    overrides); ``schedule`` mutates that state's queues each step and returns the plan;
    ``reject_reasons``, ``admits_whole`` and ``queue_waits_for_a_finish`` answer the simulator's
    questions about arrivals and queues.
    """

    @property
    def name(self) -> str: ...

    def state_for(self, table: RequestTable, limits: EngineLimits, num_blocks: int, *, priority: bool = False,
                  role: str = "both", layout: KVLayout | None = None) -> ReplicaState: ...

    def schedule(self, rep: ReplicaState, *, rows_decoding: bool = False) -> StepPlan:
        """The next step's plan. ``rows_decoding``: the replica knows every running row sampled in its
        last step (it just applied a leap), so the policy may skip checking them; False is always correct."""
        ...

    def reject_reasons(self, rep: ReplicaState) -> npt.NDArray[np.int8]:
        """Per request of the replica's table: 0 if it can ever run there, else a RejectReason (its value)."""
        ...

    def admits_whole(self, rep: ReplicaState, prompt: int, running: int) -> bool:
        """Whether a fresh request alone in the queue is admitted with its whole prompt in a step where
        ``running`` requests each decode one token (KV blocks aside). It lets a lone replica take arrivals
        in during a leap; returning False is always correct (the replica then steps normally)."""
        ...

    def queue_waits_for_a_finish(self, rep: ReplicaState) -> bool:
        """Whether requests a pure-decode step left waiting stay waiting until a running request finishes
        (decode steps alone cannot admit them). It lets a leap run beside a blocked queue; returning False
        is always correct."""
        ...
