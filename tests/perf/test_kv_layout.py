"""Sliding-window layers keep only their window of KV: pages per sequence by each engine's rule, hand-computed
from the model configs, and a simulated replica that holds as many long sequences as ``fit`` says."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inferplan.api import EngineLimits, build_deployment
from inferplan.perf.kv_layout import KVLayout, windowed_layout
from inferplan.perf.memory import blocks_for_context, max_concurrent_sequences, plan_memory
from inferplan.perf.step_cost import StepCost
from inferplan.sim.cluster import Cluster, SimOptions
from inferplan.sim.loop import simulate
from inferplan.sim.policies import POLICIES, get_policy
from inferplan.sim.state import FINISHED, REJECTED
from inferplan.workload.request import Workload


def test_vllm_groups_gemma3_27b_into_one_full_and_six_padded_sliding_groups() -> None:
    """Gemma-3-27B: 62 layers, every 6th full (10 full, 52 sliding, window 1024). vLLM's group size is the
    smaller count, 10: one full group and ceil(52 / 10) = 6 sliding groups, the last padded by 8 layers (the
    'Add 8 padding layers' warning). At 32K tokens: 2048 full pages + 6 x (1024 / 16 + 1) sliding pages."""
    mem = plan_memory(build_deployment("gemma-3-27b", "h100-sxm", engine="vllm"))
    assert mem.layout == KVLayout(16, full_pages=1, sliding_pages=6, window_blocks=65, layers_per_page=10)
    assert mem.layout.blocks(32_768) == 2048 + 6 * 65
    assert mem.layout.blocks(512) == 7 * 32  # within the window every group keeps every block
    # a page is 10 layers of 16 tokens: 16 KV heads x 128 dims x 2 (K, V) x 2 bytes x 10 x 16
    assert mem.page_bytes == 16 * 128 * 2 * 2 * 10 * 16
    # padding costs capacity: 70 layer slots for 62 layers
    per_layer = plan_memory(build_deployment("gemma-3-27b", "h100-sxm", engine="sglang"))
    assert per_layer.layout is not None and per_layer.layout.layers_per_page == 2  # gcd(10, 52), nothing padded


def test_vllm_pads_gpt_oss_with_an_eagle_head_to_thirteen_layers_a_group() -> None:
    """vLLM's own example (kv_cache_utils.py): gpt-oss-20b with an EAGLE head has 12 sliding and 13 full
    layers; 13 < 1.5 x 12, so both types form one group of 13."""
    layout = windowed_layout("grouped", 16, full_layers=13, sliding_layers=12, window=128)
    assert layout == KVLayout(16, full_pages=1, sliding_pages=1, window_blocks=9, layers_per_page=13)
    plain = windowed_layout("grouped", 16, full_layers=12, sliding_layers=12, window=128)
    assert plain.layers_per_page == 12 and plain.blocks(4096) == 256 + 9


def test_llama_cpp_gives_sliding_layers_the_window_plus_a_ubatch() -> None:
    """llama.cpp (src/llama-kv-cache-iswa.cpp): the SWA cache of a slot is pad256(min(n_ctx, n_swa + n_ubatch))
    cells; Gemma-3-4B (29 sliding of 34, window 1024) with 8192-token slots: 1536 cells for the sliding
    layers, 8192 for the full ones (gcd(5, 29) = 1: a page per layer)."""
    layout = windowed_layout("swa-cells", 16, full_layers=5, sliding_layers=29, window=1024, slot_context=8192)
    assert layout.window_blocks == 1536 // 16
    assert layout.blocks(8192) == 5 * 512 + 29 * 96
    short = windowed_layout("swa-cells", 16, full_layers=5, sliding_layers=29, window=1024, slot_context=1000)
    assert short.window_blocks == 1024 // 16  # min(1024 cells of the slot, 1536), padded to 256


def test_mistral_keeps_a_window_in_every_layer() -> None:
    """Mistral-7B-v0.1 (4K window in all 32 layers): at 32K tokens a sequence holds one window of blocks."""
    dep = build_deployment("mistral-7b-v0.1", "h100-sxm")
    assert blocks_for_context(dep, 32_768) == 4096 // 16 + 1
    assert blocks_for_context(dep, 1000) == 63


def test_a_replica_holds_as_many_long_gemma_sequences_as_fit_says() -> None:
    """Twelve 30K-token prompts at once on one H100: with full-length blocks the 40K tokens the cache holds
    would fit one sequence at a time; keeping each sliding layer's window, six fit (fit's figure), and the
    simulated replica runs at least that many together."""
    dep = build_deployment("gemma-3-27b", "h100-sxm")
    mem = plan_memory(dep)
    assert mem.kv_capacity_tokens < 2 * 30_016
    assert max_concurrent_sequences(dep, mem, 30_016) == 6
    n = 12
    res = simulate(Workload.build(np.zeros(n), [30_000] * n, [16] * n), Cluster.replicas([dep]), get_policy("vllm"),
                   options=SimOptions(check_invariants=True))
    t = res.table
    assert (t.status == FINISHED).all()
    events = sorted([(float(a), 1) for a in t.t_first_scheduled] + [(float(f), -1) for f in t.t_finish])
    running = np.cumsum([d for _, d in events])
    assert running.max() >= 6
    assert res.replicas[0].max_kv_blocks_used <= mem.num_kv_blocks


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(1, 30),
    prompt=st.integers(1, 6000),
    out=st.integers(1, 200),
    policy=st.sampled_from(sorted(POLICIES)),
    budget=st.sampled_from([512, 8192]),
    util=st.sampled_from([0.5, 0.9]),
    prefix=st.booleans(),
    engine=st.sampled_from(["vllm", "sglang"]),
)
def test_sliding_window_pages_never_exceed_the_pool(
    n: int, prompt: int, out: int, policy: str, budget: int, util: float, prefix: bool, engine: str
) -> None:
    """Gemma-3-4B on an L4 with random loads: every request finishes or is rejected with a reason, and the pages
    held never exceed the pool (checked after every step)."""
    limits = EngineLimits(max_num_batched_tokens=budget, gpu_memory_utilization=util, enable_prefix_caching=prefix)
    dep = build_deployment("gemma-3-4b", "l4", engine=engine, limits=limits)
    rng = np.random.default_rng(n * prompt)
    wl = Workload.build(np.sort(rng.uniform(0, 5, n)), rng.integers(1, prompt + 1, n), rng.integers(1, out + 1, n),
                        prefix_group=rng.integers(-1, 2, n), prefix_tokens=[512] * n)
    res = simulate(wl, Cluster.replicas([dep]), get_policy(policy, {"chunk_size": budget}),
                   options=SimOptions(check_invariants=True))
    t = res.table
    fin, rej = t.status == FINISHED, t.status == REJECTED
    assert (fin | rej).all() and np.array_equal(t.out_done[fin], t.output[fin])
    assert res.replicas[0].max_kv_blocks_used <= res.replicas[0].state.pool.num_blocks


def test_an_unknown_rule_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown sliding-window KV rule"):
        windowed_layout("ring", 16, 1, 5, 1024)


def test_tensorrt_llm_keeps_the_whole_context_in_every_layer_by_default() -> None:
    """TensorRT-LLM with no per-layer max_attention_window keeps and attends to the whole context in every
    layer, so Mistral-7B-v0.1's window saves nothing there; on vLLM a 20K-token sequence holds one window."""
    trt = build_deployment("mistral-7b-v0.1", "h100-sxm", engine="trtllm")
    vllm = build_deployment("mistral-7b-v0.1", "h100-sxm", engine="vllm")
    assert trt.attention_window is None and vllm.attention_window == 4096
    assert plan_memory(trt).layout == KVLayout(32, layers_per_page=32)  # TensorRT-LLM's 32-token blocks
    assert blocks_for_context(trt, 20_000) == 625 and blocks_for_context(vllm, 20_000) == 257
    cost_trt, cost_vllm = StepCost(trt), StepCost(vllm)
    assert (cost_trt.full_layers, cost_trt.sliding_layers) == (32, 0)
    assert (cost_vllm.full_layers, cost_vllm.sliding_layers) == (0, 32)
