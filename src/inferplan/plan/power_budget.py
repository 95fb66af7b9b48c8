"""A power budget on the fleet (``plan --power-budget W``): the fleet program keeps its power at full load within it.

A cluster's power is provisioned, and capped, as a whole (POLCA, P168). Each replica type draws its
devices' peak power at full load (or their power cap, ``perf/power.py``); the program's fleet stays
within the budget, its repairs too, and the plan says what the budget changed against the fleet the
program picks without it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from inferplan.errors import InputError
from inferplan.perf.power import capped
from inferplan.plan.fleet import Fleet, solve_fleet
from inferplan.plan.pools import ReplicaType

CAP_SHARE = 0.7  # the power cap tried beside each configuration under a budget: 70% of the device's peak


def capped_types(types: list[ReplicaType]) -> list[ReplicaType]:
    """Each aggregated type again with its devices capped at ``CAP_SHARE`` of their peak power: decode, bound by
    memory, hardly slows, so under a budget a capped large device may beat more small ones (POLCA, P168)."""
    out = []
    for t in types:
        dev = t.dep.device
        if t.aggregated and dev.is_gpu_like and dev.power_cap_w is None and dev.peak_power_w > dev.idle_power_w:
            watts = max(round(CAP_SHARE * dev.peak_power_w), dev.idle_power_w + 1)
            out.append(replace(t, dep=replace(t.dep, device=capped(dev, watts))))
    return out


@dataclass(frozen=True)
class PowerBudget:
    power_w: np.ndarray  # per type: one replica's (or unit's) power at full load
    budget_w: float | None  # None: no budget

    def solve(self, rates: np.ndarray, caps: np.ndarray, prices: np.ndarray, penalty: np.ndarray) -> Fleet:
        """The cheapest fleet within the budget (``caps``: (types, buckets)); an InputError naming the least
        power that carries the load when none fits."""
        try:
            return solve_fleet(rates, caps.T, prices, tiebreak=penalty, power_w=self.power_w,
                               power_budget_w=self.budget_w)
        except InputError:
            if self.budget_w is None:
                raise
        least = self.drawn(solve_fleet(rates, caps.T, self.power_w).replicas)  # the program on power, not price
        raise InputError(f"--power-budget {self.budget_w:,.0f} W: no fleet of the configurations measured carries "
                         f"this load within it; the least power that does is {least:,.0f} W at full load "
                         "(raise the budget, or add lower-power devices with --devices)")

    def fits(self, replicas: list[int]) -> bool:
        return self.budget_w is None or float(self.power_w @ np.array(replicas)) <= self.budget_w

    def drawn(self, replicas: tuple[int, ...] | list[int]) -> float:
        return float(self.power_w @ np.array(replicas))

    def derated(self, rates: np.ndarray, derated: np.ndarray, used: list[int], prices: np.ndarray,
                penalty: np.ndarray, replicas: list[int]) -> Fleet | None:
        """Lower the used types' capacities (in ``derated``, 10% at a time) until the program picks another
        fleet; None when no fleet of the lowered capacities fits the budget."""
        resolved = None
        for _ in range(10):
            derated[used] *= 0.9
            try:
                resolved = self.solve(rates, derated, prices, penalty)
            except InputError:
                return None
            if list(resolved.replicas) != replicas:
                break
        return resolved

    def notes(self, rates: np.ndarray, caps: np.ndarray, prices: np.ndarray, penalty: np.ndarray) -> list[str]:
        """What the budget changes: the program's fleet without it, its cost and power (before verification)."""
        if self.budget_w is None:
            return []
        free = solve_fleet(rates, caps.T, prices, tiebreak=penalty)
        drawn = self.drawn(free.replicas)
        if drawn <= self.budget_w:
            return [f"the power budget ({self.budget_w:,.0f} W) did not bind: the cheapest fleet draws {drawn:,.0f} W "
                    "at full load"]
        return [f"the power budget ({self.budget_w:,.0f} W) binds: without it the program's fleet costs "
                f"${free.cost_per_hour:.2f}/h and draws {drawn:,.0f} W at full load (before verification)"]
