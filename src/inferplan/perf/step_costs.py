"""Step costs kept between runs: one StepCost per deployment, built on first use."""

from __future__ import annotations

from inferplan.perf.deployment import Deployment
from inferplan.perf.step_cost import StepCost


class StepCosts:
    """One StepCost per deployment, built on first use and kept: a capacity search simulates the same
    deployment a dozen times, and each StepCost grows a table of decode-step parts as batches grow
    (a few hundred ``groups`` calls that a fresh one would repeat). Keyed by identity; the deployment is
    held so its id cannot be reused."""

    def __init__(self) -> None:
        self._by_id: dict[int, tuple[Deployment, StepCost]] = {}

    def get(self, dep: Deployment) -> StepCost:
        hit = self._by_id.get(id(dep))
        if hit is None:
            hit = self._by_id[id(dep)] = (dep, StepCost(dep))
        return hit[1]
