"""Equal prices never leave the choice to the solver: the fleet with less quality loss and fewer parts wins."""

from __future__ import annotations

import numpy as np

from inferplan.plan.fleet import solve_fleet


def test_equal_price_types_break_toward_the_lower_penalty() -> None:
    rates = np.array([3.0])
    capacity = np.array([[4.0, 5.0]])  # int8 sustains more, but one replica of either serves the rate
    prices = np.array([0.8, 0.8])
    for penalty, expected in (([0.0, 510.0], (1, 0)), ([510.0, 0.0], (0, 1))):
        fleet = solve_fleet(rates, capacity, prices, tiebreak=np.array(penalty))
        assert fleet.replicas == expected and fleet.cost_per_hour == 0.8


def test_the_tiebreak_never_raises_the_price() -> None:
    rates = np.array([3.0])
    capacity = np.array([[2.0, 5.0]])  # the preferred type needs two replicas: dearer, so not chosen
    fleet = solve_fleet(rates, capacity, np.array([0.8, 0.8]), tiebreak=np.array([0.0, 510.0]))
    assert fleet.replicas == (0, 1) and fleet.cost_per_hour == 0.8
