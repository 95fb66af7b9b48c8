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

OBJECTIVES = ("cost", "energy", "cost+energy")
CAP_SHARE = 0.7  # the power cap tried beside each configuration under a budget: 70% of the device's peak


@dataclass(frozen=True)
class FleetObjective:
    """What the fleet program minimizes (``plan --objective``), per replica of each type and per bucket's share.

    ``cost``: the price. ``energy``: the watts the fleet draws, the simulator's power model made linear: each
    replica its idle power, and the load a bucket puts on a type (its rate over the type's capacity, in
    replicas kept busy) the busy power above idle. ``cost+energy``: the price plus those watts' electricity
    at ``energy_price_per_kwh`` (a renter who pays for power apart)."""

    name: str
    dollars: np.ndarray  # (C,) $/h per replica: what a fleet is reported to cost, whatever it minimizes
    idle_w: np.ndarray  # (C,) one replica's power with nothing to do
    busy_w: np.ndarray  # (C,) ... and kept busy
    energy_price_per_kwh: float = 0.0

    @classmethod
    def cost(cls, dollars: np.ndarray) -> FleetObjective:
        return cls("cost", dollars, np.zeros_like(dollars), np.zeros_like(dollars))

    def weights(self, rates: np.ndarray, caps: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Per replica (C,), and per whole bucket sent to a type (B, C); ``caps``: (C, B) req/s."""
        if self.name == "cost":
            return self.dollars, None
        load = np.divide(rates[None, :], caps, out=np.zeros(caps.shape), where=caps > 0).T
        dynamic = load * (self.busy_w - self.idle_w)[None, :]
        if self.name == "energy":
            return self.idle_w.astype(float), dynamic
        kwh = self.energy_price_per_kwh / 1000
        return self.dollars + self.idle_w * kwh, dynamic * kwh

    def score(self, fleet: Fleet, replicas: list[int], rates: np.ndarray, caps: np.ndarray) -> float:
        """The objective of ``replicas`` serving the load in ``fleet``'s split (a grown fleet keeps it)."""
        per_replica, per_share = self.weights(rates, caps)
        shares = 0.0 if per_share is None else float((per_share * fleet.shares).sum())
        return float(per_replica @ np.array(replicas)) + shares


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
    objective: FleetObjective

    def solve(self, rates: np.ndarray, caps: np.ndarray, penalty: np.ndarray, *, budget: bool = True) -> Fleet:
        """The best fleet by the objective within the budget (``caps``: (types, buckets)), priced in dollars;
        an InputError naming the least power that carries the load when none fits."""
        per_replica, per_share = self.objective.weights(rates, caps)
        limit = self.budget_w if budget else None
        try:
            fleet = solve_fleet(rates, caps.T, per_replica, tiebreak=penalty, power_w=self.power_w,
                                power_budget_w=limit, share_cost=per_share)
            return replace(fleet, cost_per_hour=float(self.objective.dollars @ np.array(fleet.replicas)))
        except InputError:
            if limit is None:
                raise
        least = self.drawn(solve_fleet(rates, caps.T, self.power_w).replicas)  # the program on power, not price
        raise InputError(f"--power-budget {self.budget_w:,.0f} W: no fleet of the configurations measured carries "
                         f"this load within it; the least power that does is {least:,.0f} W at full load "
                         "(raise the budget, or add lower-power devices with --devices)")

    def fits(self, replicas: list[int]) -> bool:
        return self.budget_w is None or float(self.power_w @ np.array(replicas)) <= self.budget_w

    def drawn(self, replicas: tuple[int, ...] | list[int]) -> float:
        return float(self.power_w @ np.array(replicas))

    def derated(self, rates: np.ndarray, derated: np.ndarray, used: list[int], penalty: np.ndarray,
                replicas: list[int]) -> Fleet | None:
        """Lower the used types' capacities (in ``derated``, 10% at a time) until the program picks another
        fleet; None when no fleet of the lowered capacities fits the budget."""
        resolved = None
        for _ in range(10):
            derated[used] *= 0.9
            try:
                resolved = self.solve(rates, derated, penalty)
            except InputError:
                return None
            if list(resolved.replicas) != replicas:
                break
        return resolved

    def notes(self, rates: np.ndarray, caps: np.ndarray, penalty: np.ndarray) -> list[str]:
        """What the budget changes: the program's fleet without it, its cost and power (before verification)."""
        if self.budget_w is None:
            return []
        free = self.solve(rates, caps, penalty, budget=False)
        drawn = self.drawn(free.replicas)
        if drawn <= self.budget_w:
            return [f"the power budget ({self.budget_w:,.0f} W) did not bind: the program's fleet draws {drawn:,.0f} W "
                    "at full load"]
        return [f"the power budget ({self.budget_w:,.0f} W) binds: without it the program's fleet costs "
                f"${free.cost_per_hour:.2f}/h and draws {drawn:,.0f} W at full load (before verification)"]
