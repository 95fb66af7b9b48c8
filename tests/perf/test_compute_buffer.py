"""llama.cpp's compute buffer and reserve, checked by hand against the engine's own rule and printout."""

from __future__ import annotations

import pytest

from inferplan.api import build_deployment
from inferplan.perf.compute_buffer import compute_bytes
from inferplan.perf.memory import plan_memory

MIB = 2**20


def _llamacpp(device: str = "m1-8gb", **limits: object) -> object:
    given = {"max_num_seqs": 1, "max_num_batched_tokens": 512} | limits
    return build_deployment("llama-3.1-8b", device, weights="gguf-q4_k_m", engine="llamacpp", limits=given)


def test_the_output_stage_is_the_buffer_llama_cpp_prints_for_llama_3_8b() -> None:
    """512 tokens x (128,256 logits + 4,096 hidden) x 4 B = 258.50 MiB, what llama.cpp prints as its compute
    buffer for Llama 3 8B at n_ubatch 512 with flash attention."""
    dep = _llamacpp(flash_attention=True, slot_context=8192)
    assert plan_memory(dep).activation_bytes == 512 * (128_256 + 4096) * 4
    assert plan_memory(dep).activation_bytes / MIB == pytest.approx(258.5)


def test_without_flash_attention_the_scores_span_the_slot() -> None:
    """KQ scores: 512 tokens x 32 heads x 4 B per cell, beside Q and the residual (2 x 512 x 4096 x 4 B):
    256 + 16 MiB at 4,096 cells, 512 + 16 MiB at 8,192, where they outgrow the output stage."""
    four_k = plan_memory(_llamacpp(flash_attention=False, slot_context=4096)).activation_bytes
    eight_k = plan_memory(_llamacpp(flash_attention=False, slot_context=8192)).activation_bytes
    assert (four_k / MIB, eight_k / MIB) == (272.0, 528.0)
    dep = _llamacpp(flash_attention=False)
    assert compute_bytes(dep, 0) == 512 * (128_256 + 4096) * 4  # an empty view: the output stage again


def test_the_m1_8gb_runs_8b_q4_k_m_at_4k_and_not_at_8k_as_measured() -> None:
    """XiongjieDai's table: 8B Q4_K_M on an 8 GB M1 ran pp4096/tg4096 and ran out of memory at 8192. The
    weights, a 4,096-cell cache (512 MiB) and the 272 MiB buffer fit within Metal's recommended working set
    (~2/3 of 8 GiB); 1 GiB of cells and a 528 MiB buffer do not."""
    fits = plan_memory(_llamacpp(flash_attention=False, slot_context=4096))
    over = plan_memory(_llamacpp(flash_attention=False, slot_context=8192))
    assert fits.num_kv_blocks == 4096 // 16 and fits.overhead_bytes == 0  # Metal: no CUDA context to reserve
    assert over.num_kv_blocks == 0


def test_a_cuda_device_keeps_the_driver_context_reserve() -> None:
    assert plan_memory(_llamacpp("rtx-4090")).overhead_bytes == 0.25 * 2**30
