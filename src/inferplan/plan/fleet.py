"""The cheapest fleet: a mixed-integer program over replica types and request-size buckets (Melange, P188).

Variables: ``x[c]`` replicas of candidate type c (integers) and ``y[b, c]`` the share
of bucket b's requests sent to type c. Constraints: every bucket is fully served,
``sum_c y[b, c] = 1``, and each type has the replicas its share needs,
``sum_b y[b, c] * rate[b] / capacity[b, c] <= x[c]``. Objective: sum of ``price[c] * x[c]``.
Solved with scipy's HiGHS ``milp``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp

from inferplan.errors import InputError


@dataclass(frozen=True, slots=True)
class Fleet:
    replicas: tuple[int, ...]  # per candidate type
    shares: np.ndarray  # (buckets, types): fraction of each bucket's requests per type
    cost_per_hour: float


def solve_fleet(rates: np.ndarray, capacity: np.ndarray, prices: np.ndarray, *, max_replicas: int = 1000,
                previous: np.ndarray | None = None, launch_cost: np.ndarray | None = None,
                release_cost: np.ndarray | None = None, tiebreak: np.ndarray | None = None,
                power_w: np.ndarray | None = None, power_budget_w: float | None = None,
                share_cost: np.ndarray | None = None) -> Fleet:
    """rates: (B,) req/s per bucket; capacity: (B, C) req/s one replica of type c sustains on bucket b.

    With ``previous`` counts (autoscaling, one window after another), replicas added cost
    ``launch_cost`` and replicas removed ``release_cost`` each (same unit as ``prices``), so the
    program changes the fleet only when the change pays for itself.

    ``tiebreak`` (C,): a penalty per replica of each type (lower is better: less quality loss, fewer
    parts). Among the fleets of the cheapest price, the one with the least total penalty is chosen, so
    equal prices never leave the choice to the solver's whim.

    ``power_w`` (C,) and ``power_budget_w``: the fleet's power at full load, ``sum_c power_w[c] * x[c]``,
    stays within the budget (POLCA, P168: a cluster's power is provisioned, and capped, as a whole).
    ``share_cost`` (B, C): a cost of sending all of bucket b to type c, paid in proportion to ``y[b, c]`` (the
    energy a type's busy time draws for that load); the reported cost stays ``prices @ x``.
    """
    n_b, n_c = capacity.shape
    if n_b == 0 or n_c == 0:
        raise InputError("nothing to plan: no buckets or no candidate types")
    if (capacity.max(axis=1) <= 0).any():
        bad = int(np.nonzero(capacity.max(axis=1) <= 0)[0][0])
        raise InputError(f"no candidate meets the SLOs for request bucket {bad}; relax the SLOs or add devices")
    # variable order: x[0..C), y[b, c] row-major, then (with previous) up[0..C), down[0..C)
    n_y = n_b * n_c
    n_s = 2 * n_c if previous is not None else 0
    n = n_c + n_y + n_s
    cost = np.concatenate([prices, np.zeros(n_y) if share_cost is None else share_cost.ravel()])
    if previous is not None:
        cost = np.concatenate([cost, np.zeros(n_c) if launch_cost is None else launch_cost,
                               np.zeros(n_c) if release_cost is None else release_cost])
    integrality = np.concatenate([np.ones(n_c), np.zeros(n_y + n_s)])
    lower = np.zeros(n)
    upper = np.concatenate([np.full(n_c, max_replicas), np.where(capacity.ravel() > 0, 1.0, 0.0),
                            np.full(n_s, float(max_replicas))])
    a_eq = np.zeros((n_b, n))
    for b in range(n_b):
        a_eq[b, n_c + b * n_c : n_c + (b + 1) * n_c] = 1.0
    a_cap = np.zeros((n_c, n))
    with np.errstate(divide="ignore"):
        load = np.where(capacity > 0, rates[:, None] / np.where(capacity > 0, capacity, 1.0), 0.0)
    for c in range(n_c):
        a_cap[c, c] = -1.0
        for b in range(n_b):
            a_cap[c, n_c + b * n_c + c] = load[b, c]
    constraints = [LinearConstraint(a_eq, 1.0, 1.0), LinearConstraint(a_cap, -np.inf, 0.0)]
    if power_budget_w is not None and power_w is not None:
        constraints.append(LinearConstraint(np.concatenate([power_w, np.zeros(n - n_c)])[None, :], -np.inf,
                                            power_budget_w))
    if previous is not None:  # x - up + down = previous
        a_move = np.zeros((n_c, n))
        for c in range(n_c):
            a_move[c, c] = 1.0
            a_move[c, n_c + n_y + c] = -1.0
            a_move[c, n_c + n_y + n_c + c] = 1.0
        constraints.append(LinearConstraint(a_move, previous, previous))
    bounds = Bounds(lower, upper)
    res = _solve(cost, integrality, bounds, constraints)
    if tiebreak is not None and (tiebreak != tiebreak[0]).any():
        # second stage: least penalty among the fleets within a rounding error of the cheapest cost
        best = float(cost @ res.x)  # the objective's optimum (a share cost included)
        cheapest = LinearConstraint(cost[None, :], -np.inf, best + 1e-9 * max(abs(best), 1.0))
        penalty = np.concatenate([tiebreak, np.zeros(n - n_c)])
        res = _solve(penalty, integrality, bounds, [*constraints, cheapest])
    x = np.rint(res.x[:n_c]).astype(int)
    y = res.x[n_c : n_c + n_y].reshape(n_b, n_c)
    return Fleet(tuple(int(v) for v in x), np.clip(y, 0.0, 1.0), float(prices @ x))


def _solve(cost: np.ndarray, integrality: np.ndarray, bounds: Bounds, constraints: list[LinearConstraint]) -> Any:
    with _quiet_stdout():  # HiGHS can print solver notes to the C-level stdout, which would corrupt --json
        res = milp(cost, integrality=integrality, bounds=bounds, constraints=constraints)
    if not res.success:
        raise InputError(f"the fleet problem has no solution ({res.message})")
    return res


@contextmanager
def _quiet_stdout() -> Iterator[None]:
    """Send file descriptor 1 to /dev/null for the duration (Python's own sys.stdout is flushed first)."""
    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)
