"""The fleet MILP: optimal on small instances (checked by brute force), mixed only when cheaper."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy.optimize import linprog

from inferplan.errors import InputError
from inferplan.plan.fleet import solve_fleet


def feasible(x: tuple[int, ...], rates: np.ndarray, cap: np.ndarray) -> bool:
    """Can replicas ``x`` serve every bucket? An LP over the shares y[b, c]."""
    n_b, n_c = cap.shape
    a_eq = np.zeros((n_b, n_b * n_c))
    for b in range(n_b):
        a_eq[b, b * n_c : (b + 1) * n_c] = 1
    a_ub = np.zeros((n_c, n_b * n_c))
    for c in range(n_c):
        for b in range(n_b):
            a_ub[c, b * n_c + c] = rates[b] / cap[b, c] if cap[b, c] > 0 else 0
    bounds = [(0, 1 if cap[b, c] > 0 else 0) for b in range(n_b) for c in range(n_c)]
    res = linprog(np.zeros(n_b * n_c), A_ub=a_ub, b_ub=np.array(x, dtype=float), A_eq=a_eq, b_eq=np.ones(n_b),
                  bounds=bounds, method="highs")
    return bool(res.success)


@pytest.mark.parametrize("seed", range(8))
def test_milp_matches_brute_force(seed: int) -> None:
    """Random small instances: the MILP's cost equals the cheapest feasible replica vector."""
    rng = np.random.default_rng(seed)
    n_b, n_c = rng.integers(1, 4), rng.integers(1, 4)
    cap = rng.uniform(2, 10, (n_b, n_c)) * (rng.random((n_b, n_c)) > 0.2)
    cap[:, 0] = np.maximum(cap[:, 0], 2)  # every bucket servable by type 0; 8 replicas of it always suffice
    rates = rng.uniform(0.5, 5, n_b)
    prices = rng.uniform(0.5, 5, n_c)
    fleet = solve_fleet(rates, cap, prices)
    best = min(float(prices @ np.array(x)) for x in itertools.product(range(9), repeat=n_c)
               if feasible(x, rates, cap))
    assert fleet.cost_per_hour == pytest.approx(best, rel=1e-6)
    assert feasible(fleet.replicas, rates, cap)
    assert np.allclose(fleet.shares.sum(axis=1), 1)


def test_mixed_fleet_when_each_type_is_good_at_one_bucket() -> None:
    """Cheap small GPU for short requests, big GPU for long ones: the mix beats either alone."""
    rates = np.array([10.0, 2.0])  # short, long requests per second
    cap = np.array([[10.0, 20.0],  # short bucket: small GPU 10/s, big 20/s
                    [0.25, 2.0]])  # long bucket: small GPU nearly useless
    prices = np.array([1.0, 4.0])
    fleet = solve_fleet(rates, cap, prices)
    assert fleet.replicas == (1, 1) and fleet.cost_per_hour == 5.0
    assert solve_fleet(rates, cap[:, 1:], prices[1:]).cost_per_hour == 8.0  # big GPU only: 2 replicas
    assert solve_fleet(rates, cap[:, :1], prices[:1]).cost_per_hour == 9.0  # small only: 9 replicas


def test_single_type_when_it_is_cheaper() -> None:
    """When one type is more cost-efficient on every bucket, the fleet uses only it."""
    fleet = solve_fleet(np.array([4.0, 4.0]), np.array([[4.0, 1.0], [4.0, 1.0]]), np.array([1.0, 0.5]))
    assert fleet.replicas == (2, 0)


def test_unservable_bucket_is_explained() -> None:
    """A bucket no type can serve is reported, not silently dropped."""
    with pytest.raises(InputError, match="bucket 1"):
        solve_fleet(np.array([1.0, 1.0]), np.array([[1.0], [0.0]]), np.array([1.0]))


def test_changing_the_fleet_must_pay_for_its_launches_and_releases() -> None:
    """Two B replicas ($1.2/h each) run; A is cheaper ($1/h) for the same 10 req/s. From scratch the
    program buys two A ($2.0); with launches at $0.5 and releases at $0.12 each, switching costs
    2.0 + 1.0 + 0.24 = 3.24 > 2.4, so it keeps the two B."""
    rates, capacity, prices = np.array([15.0]), np.array([[10.0, 10.0]]), np.array([1.0, 1.2])
    assert solve_fleet(rates, capacity, prices).replicas == (2, 0)
    kept = solve_fleet(rates, capacity, prices, previous=np.array([0.0, 2.0]), launch_cost=np.array([0.5, 0.6]),
                       release_cost=np.array([0.1, 0.12]))
    assert kept.replicas == (0, 2) and kept.cost_per_hour == 2.4
    cheap_moves = solve_fleet(rates, capacity, prices, previous=np.array([0.0, 2.0]),
                              launch_cost=np.array([0.05, 0.06]), release_cost=np.array([0.01, 0.012]))
    assert cheap_moves.replicas == (2, 0)
