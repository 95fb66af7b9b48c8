"""The router contract: ``assign`` up front only where the choice never reads replica state."""

from __future__ import annotations

import numpy as np

from inferplan.api import EngineLimits, build_deployment
from inferplan.sim.cluster import Cluster
from inferplan.sim.loop import simulate
from inferplan.sim.policies import get_policy
from inferplan.sim.routers import ROUTERS, get_router
from inferplan.workload.presets import make_workload
from inferplan.workload.request import Workload


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


def test_cache_aware_follows_the_longest_routed_prefix_until_loads_part() -> None:
    """sglang-router's cache_aware rule on hand-made prompts (content ids per 64-token chunk): a prompt whose
    routed prefix covers more than 30% of it goes where that prefix went; one with no such match goes to the
    replica that holds the least; once the busiest replica has more than 64 more requests than the idlest and
    over 1.5x as many, the idlest gets it whatever its cache."""
    from types import SimpleNamespace

    from inferplan.workload.request import Workload

    chains = ((1, 2, 3), (1, 2, 3, 4), (9,), (1, 2, 3, 4, 5), (1, 2, 3, 4, 5, 6))
    wl = Workload.build(np.arange(5.0), [64 * len(c) for c in chains], [10] * 5, prefix_chain=chains,
                        chain_block_tokens=64)
    router = get_router("cache-aware", np.random.default_rng(0), wl)
    replicas = [SimpleNamespace(index=i, num_outstanding=0) for i in range(2)]
    picks = [router.choose(rid, replicas) for rid in range(3)]  # type: ignore[arg-type]
    assert picks == [0, 0, 1]  # no tree yet: the lowest index; 3 of 4 chunks routed to 0; nothing matches 9
    replicas[0].num_outstanding = 65 + 1
    replicas[1].num_outstanding = 1
    assert router.choose(3, replicas) == 1  # type: ignore[arg-type]  # 66 vs 1: imbalanced, the idlest
    # request 3's prompt entered replica 1's tree even so; with 64 apart (balanced) the longest prefix, now on
    # replica 1, wins over the idler replica 0
    replicas[0].num_outstanding, replicas[1].num_outstanding = 1, 65
    assert router.choose(4, replicas) == 1  # type: ignore[arg-type]


def test_precise_prefix_routing_reads_what_each_replica_holds() -> None:
    """llm-d's precise scorer sees evictions that a router's own tree of routed prompts does not: multi-turn
    sessions at 3 req/s on three L4s (small KV caches, so earlier turns are evicted), 1,500 requests. Reading
    each replica's resident blocks, it hits more prefix tokens than sglang-router's cache-aware tree and keeps
    p99 TTFT under a second where cache-aware sends turns to replicas that no longer hold them (measured:
    154,640 against 140,240 hit tokens; p99 TTFT 0.66 s against 4.87 s)."""
    from inferplan.runs import SimulationConfig, simulate_config

    def run(router: str) -> tuple[int, float]:
        cfg = SimulationConfig(model="llama-3.1-8b", device="l4", workload="multi-turn", rate=3, num_requests=1500,
                               enable_prefix_caching=True, replicas=3, router=router)
        _, s = simulate_config(cfg)
        assert s.sim is not None
        return s.sim.prefix_cache_hit_tokens, s.ttft_s.p99

    precise, approximate = run("precise-prefix"), run("cache-aware")
    assert precise[0] > approximate[0]
    assert precise[1] < 1.0 < approximate[1]


def test_precise_prefix_scores_resident_share_kv_room_and_queue() -> None:
    """Two replicas, the first still decoding a request that shares a 512-token prefix with the next one: the
    next scores 2 x 32/32 for the resident prefix there against slightly more free KV on the idle one, so it
    follows the prefix; without a shared prefix the idle replica's free KV decides."""
    dep = build_deployment("llama-3.2-1b", "l4", limits=EngineLimits(enable_prefix_caching=True))

    def routed(shared: bool) -> list[int]:
        wl = Workload.build([0.0, 0.5], [520, 520], [400, 4], prefix_group=[0, 0] if shared else None,
                            prefix_tokens=[512, 512] if shared else None)
        return simulate(wl, Cluster.replicas([dep, dep]), get_policy("vllm"),
                        router="precise-prefix").table.replica.tolist()

    assert routed(True) == [0, 0]
    assert routed(False) == [0, 1]
