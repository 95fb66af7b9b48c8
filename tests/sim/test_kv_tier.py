"""A host-memory KV tier: blocks the device evicts move to host memory, and a later prompt loads them back
over the host link instead of recomputing them."""

from __future__ import annotations

import pytest

from inferplan.api import build_deployment
from inferplan.errors import InputError
from inferplan.perf.deployment import EngineLimits
from inferplan.perf.memory import plan_memory
from inferplan.runs import SimulationConfig, simulate_config
from inferplan.sim.kv import BlockPool


def test_an_evicted_block_waits_in_host_memory_until_a_prompt_loads_it() -> None:
    pool = BlockPool(2, 16, prefix_caching=True, cpu_blocks=2)
    assert pool.take(2)
    for key in ("a", "b"):
        pool.register(1, key)
    pool.release(1, 2)  # both cached, evictable
    assert pool.take(1)  # evicts "a" (least recently used) to the host tier
    assert pool.cached_prefix(["a", "b"]) == (0, 0) and pool.cpu_prefix(["a", "b"]) == 1
    pool.release(2, 1)
    assert pool.take(2)  # evicts "b" too: the tier holds a, b
    assert pool.cpu_prefix(["a", "b"]) == 2
    pool.load(3, ["a"])  # copied back into a block request 3 took: cached on the device again
    assert pool.cached_prefix(["a"]) == (1, 0)
    pool.release(3, 2)
    pool.check()


def test_the_host_tier_keeps_the_most_recently_evicted() -> None:
    pool = BlockPool(1, 16, prefix_caching=True, cpu_blocks=1)
    for rid, key in enumerate("xyz"):
        assert pool.take(1)
        pool.register(rid, key)
        pool.release(rid, 1)
    assert pool.take(1)  # evicts z; x left the one-block tier when y came, y when z came
    assert [pool.cpu_prefix([k]) for k in "xyz"] == [0, 0, 1]


def test_a_tier_needs_prefix_caching_a_host_link_and_room_in_host_memory() -> None:
    with pytest.raises(InputError, match="add --prefix-caching"):
        build_deployment("llama-3.1-8b", "h100-sxm", limits=EngineLimits(cpu_kv_cache_gib=64))
    with pytest.raises(InputError, match="more than the 256 GiB of host memory"):
        build_deployment("llama-3.1-8b", "h100-sxm",
                         limits=EngineLimits(enable_prefix_caching=True, cpu_kv_cache_gib=300))
    with pytest.raises(InputError, match="no host link bandwidth"):
        build_deployment("llama-3.1-8b", "rtx-4090",
                         limits=EngineLimits(enable_prefix_caching=True, cpu_kv_cache_gib=8))
    with pytest.raises(InputError, match="0 or more GiB"):
        EngineLimits(cpu_kv_cache_gib=-1)


def test_a_host_tier_lowers_ttft_on_agent_sessions_whose_contexts_outgrow_the_device() -> None:
    """Coding-agent sessions (~63K-token contexts) on one H100 with prefix caching: the device's KV holds a
    few sessions, so contexts are evicted between an agent's calls. With 128 GiB of host memory for evicted
    blocks they come back over PCIe Gen5 (64 GB/s, 2.0 us per token of Llama-3.1-8B's 128 KiB) instead of
    being prefilled again (LMCache and SGLang HiCache report the same direction on multi-turn reuse)."""
    def run(cpu_gib: float) -> tuple[float, int, float]:
        cfg = SimulationConfig(model="llama-3.1-8b", device="h100-sxm", workload="agentic", rate=0.3,
                               num_requests=400, enable_prefix_caching=True, cpu_kv_cache_gib=cpu_gib)
        res, summary = simulate_config(cfg)
        rep = res.replicas[0]
        return summary.ttft_s.p90, rep.host_loaded_tokens, rep.busy_s

    without, with_tier = run(0.0), run(128.0)
    assert without[1] == 0 and with_tier[1] > 100_000
    assert with_tier[0] < 0.5 * without[0]
    assert with_tier[2] < without[2]  # less device time: copies are cheaper than prefill
    dep = build_deployment("llama-3.1-8b", "h100-sxm")
    assert plan_memory(dep).kv_bytes_per_token / 64e9 == pytest.approx(2.048e-6)
