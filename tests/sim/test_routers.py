"""The router contract: ``assign`` up front only where the choice never reads replica state."""

from __future__ import annotations

import numpy as np

from inferplan.api import build_deployment
from inferplan.sim.cluster import Cluster
from inferplan.sim.loop import simulate
from inferplan.sim.policies import get_policy
from inferplan.sim.routers import ROUTERS, get_router
from inferplan.workload.presets import make_workload


def test_only_round_robin_assigns_arrivals_up_front() -> None:
    wl = make_workload("chat", rate=2, duration_s=10, seed=0)
    rng = np.random.default_rng(0)
    assigned = {name: get_router(name, rng, wl).assign(7, 3) for name in ROUTERS}
    rr = assigned.pop("round-robin")
    assert rr is not None and rr.tolist() == [0, 1, 2, 0, 1, 2, 0]
    assert all(a is None for a in assigned.values()), assigned


def test_round_robin_up_front_gives_what_choosing_per_arrival_gives() -> None:
    """The assignment is only a speed-up: three round-robin replicas fed up front serve each request
    on the replica, and at the times, that a router choosing per arrival gives."""

    class PerArrival:
        name = "round-robin, per arrival"

        def __init__(self) -> None:
            self._next = 0

        def choose(self, rid: int, replicas: object) -> int:
            self._next += 1
            return (self._next - 1) % 3

        def assign(self, count: int, num_replicas: int) -> None:
            return None

    wl = make_workload("chat", rate=6, duration_s=60, seed=3)
    deps = [build_deployment("llama-3.1-8b", "a10g")] * 3
    fed = simulate(wl, Cluster.replicas(deps), get_policy("vllm"), router="round-robin", seed=0)
    chosen = simulate(wl, Cluster.replicas(deps), get_policy("vllm"), router=PerArrival(), seed=0)
    assert np.array_equal(fed.table.replica, chosen.table.replica)
    for times in ("t_first_token", "t_finish"):
        assert np.allclose(getattr(fed.table, times), getattr(chosen.table, times), rtol=1e-12, atol=1e-9)
    assert (fed.table.status == chosen.table.status).all()
