"""Memory model: weights, KV blocks and limits, checked by hand."""

from __future__ import annotations

import pytest

from inferplan.api import EngineLimits, build_deployment
from inferplan.errors import InputError
from inferplan.perf.memory import blocks_for_context, max_concurrent_sequences, max_context, plan_memory

GIB = 2**30


def test_weights_bf16_are_two_bytes_per_parameter() -> None:
    """Llama-3.1-8B in bf16: 8,030,261,248 params x 2 bytes."""
    dep = build_deployment("llama-3.1-8b", "h100-sxm")
    assert plan_memory(dep).weights_bytes == pytest.approx(dep.model.params_total * 2)


def test_awq_keeps_embeddings_in_16_bit() -> None:
    """AWQ quantizes the decoder body; embedding and LM head stay 16-bit."""
    dep = build_deployment("llama-3.1-8b", "h100-sxm", weights="int4-awq")
    m = dep.model
    emb = m.embedding_params + m.lm_head_params
    expect = (m.params_total - emb) * (4 + 20 / 128) / 8 + emb * 2
    assert plan_memory(dep).weights_bytes == pytest.approx(expect, rel=1e-4)


def test_kv_blocks_by_hand() -> None:
    """KV blocks = (0.9 x capacity - weights - workspace - overhead) / (16 x bytes per token)."""
    dep = build_deployment("llama-3.1-8b", "h100-sxm")
    mem = plan_memory(dep)
    budget = 80 * GIB * 0.9 - mem.weights_bytes - mem.activation_bytes - mem.overhead_bytes
    assert mem.num_kv_blocks == int(budget // (16 * 131_072))


def test_each_engine_sizes_its_kv_cache_by_its_own_rule() -> None:
    """TensorRT-LLM gives the KV cache 0.9 of the memory left free (KvCacheConfig.free_gpu_memory_fraction)
    in 32-token blocks (tokens_per_block); SGLang keeps 0.88 of the device (mem_fraction_static) in
    1-token pages. Llama-3.1-8B bf16 on an 80 GiB H100: 128 KiB of KV per token."""
    trt = build_deployment("llama-3.1-8b", "h100-sxm", engine="trtllm")
    mem = plan_memory(trt)
    free = 80 * GIB - mem.weights_bytes - mem.activation_bytes - 1 * GIB
    assert mem.block_size == 32 and mem.num_kv_blocks == int(0.9 * free // (32 * 131_072))
    sgl = plan_memory(build_deployment("llama-3.1-8b", "h100-sxm", engine="sglang"))
    budget = 80 * GIB * 0.88 - sgl.weights_bytes - sgl.activation_bytes - 1 * GIB
    assert sgl.block_size == 1 and sgl.num_kv_blocks == int(budget // 131_072)
    assert trt.limits.max_num_seqs == 2048 and not trt.limits.enable_chunked_prefill  # llm_args.py defaults


def test_a_value_the_user_gives_wins_over_the_engines_default() -> None:
    dep = build_deployment("llama-3.1-8b", "h100-sxm", engine="trtllm",
                           limits={"max_num_seqs": 64, "enable_chunked_prefill": True})
    assert (dep.limits.max_num_seqs, dep.limits.enable_chunked_prefill, dep.limits.block_size) == (64, True, 32)


def test_tensor_parallel_splits_weights_and_kv() -> None:
    """TP=2 halves weights and KV per device for a GQA model with 8 KV heads."""
    one = plan_memory(build_deployment("llama-3.1-70b", "h100-sxm", tp=2))
    two = plan_memory(build_deployment("llama-3.1-70b", "h100-sxm", tp=4))
    assert two.weights_bytes == pytest.approx(one.weights_bytes / 2)
    assert two.kv_bytes_per_token == pytest.approx(one.kv_bytes_per_token / 2)


def test_kv_heads_replicate_past_their_count() -> None:
    """TP=16 on 8 KV heads cannot split KV more than 8 ways."""
    dep = build_deployment("llama-3.1-405b", "h100-sxm", tp=16)
    assert dep.kv_shards == 8


def test_too_big_model_does_not_fit() -> None:
    """Llama-3.1-70B bf16 (141 GB) does not fit one 80 GB GPU."""
    mem = plan_memory(build_deployment("llama-3.1-70b", "h100-sxm"))
    assert not mem.fits and mem.shortfall_bytes > 60 * GIB


def test_max_context_capped_by_model_limit() -> None:
    """A small model on a big GPU is limited by max_position_embeddings, not memory."""
    dep = build_deployment("tinyllama-1.1b", "h100-sxm")
    assert max_context(dep, plan_memory(dep)) == 2048


def test_max_context_limited_by_memory() -> None:
    """Llama-3.1-8B on an L4: the KV budget, not the 128k limit, decides."""
    dep = build_deployment("llama-3.1-8b", "l4")
    mem = plan_memory(dep)
    ctx = max_context(dep, mem)
    assert ctx == mem.num_kv_blocks * 16 < 131_072


def test_concurrency_is_blocks_over_blocks_per_sequence() -> None:
    """max concurrent = floor(blocks / ceil(context / 16))."""
    dep = build_deployment("llama-3.1-8b", "h100-sxm")
    mem = plan_memory(dep)
    assert max_concurrent_sequences(dep, mem, 4000) == mem.num_kv_blocks // 250


def test_sliding_window_needs_fewer_blocks() -> None:
    """Mistral-7B-v0.1 (4k window everywhere) needs 4k worth of blocks at 32k context, plus the block a window
    ending mid-block straddles (vLLM's SlidingWindowSpec keeps cdiv(w, block) + 1)."""
    dep = build_deployment("mistral-7b-v0.1", "h100-sxm")
    assert blocks_for_context(dep, 32768) == 4096 // 16 + 1


def test_bad_memory_utilization_is_refused() -> None:
    """gpu_memory_utilization must be in (0, 1]."""
    with pytest.raises(InputError, match="gpu_memory_utilization"):
        EngineLimits(gpu_memory_utilization=1.5)
