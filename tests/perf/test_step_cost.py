"""StepCost: roofline sanity against datasheets, closed forms of attention work, monotonicity."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from inferplan.api import build_deployment
from inferplan.perf.memory import weights_bytes
from inferplan.perf.step_cost import BatchShape, StepCost, batch_shape, chunk_pairs, chunk_pairs_window
from inferplan.specs.catalog import device_catalog

CASES = [
    ("llama-3.1-8b", "bf16"),
    ("qwen3-30b-a3b", "bf16"),
    ("llama-3.2-1b", "gguf-q4_k_m"),
]


@pytest.mark.parametrize("device", sorted(device_catalog()))
@pytest.mark.parametrize(("model", "fmt"), CASES)
def test_decode_batch1_never_beats_memory_bandwidth(device: str, model: str, fmt: str) -> None:
    """Batch-1 decode reads every active weight once: time >= active weight bytes / peak bandwidth."""
    dep = build_deployment(model, device, weights=fmt)
    m = dep.model
    active_bytes = weights_bytes(dep) * dep.num_devices * m.params_active_excluding_input_embedding / m.params_total
    floor_s = active_bytes / dep.device.memory_bw_bytes_per_s
    assert StepCost(dep).decode_seconds(1, 512) >= floor_s


def test_h100_decode_of_8b_is_near_bandwidth_bound() -> None:
    """16 GB of weights at 3.35 TB/s x 0.739 = 6.5 ms; vLLM's 2 ms of host time per step runs under the kernels
    (async scheduling), and adds to them where it does not (the engine of a version without it)."""
    dep = build_deployment("llama-3.1-8b", "h100-sxm")
    cost = StepCost(dep)
    t = cost.decode_seconds(1, 128)
    assert 0.0063 < t < 0.0072
    host = cost.step_overhead_s + cost.per_seq_overhead_s
    serial = StepCost(replace(dep, profile=dep.device_profile.model_copy(update={"host_overlapped": False})))
    assert serial.decode_seconds(1, 128) == pytest.approx(t + host, rel=1e-12)


def test_overlapped_host_time_sets_the_step_where_it_exceeds_the_kernels() -> None:
    """A step takes max(kernels, host): a 5 ms host time over 6.5 ms of kernels is hidden, a 20 ms one is the
    step; the leap's table (decode_steps) prices the same steps bit for bit."""
    import numpy as np

    dep = build_deployment("llama-3.1-8b", "h100-sxm")
    for step_s in (0.005, 0.020):
        prof = dep.device_profile.model_copy(update={"step_overhead_s": step_s, "per_sequence_overhead_s": 0.0})
        cost = StepCost(replace(dep, profile=prof))
        kernels = StepCost(replace(dep, profile=prof.model_copy(update={"step_overhead_s": 0.0})))
        shape = BatchShape.decodes(4, 4 * 128)
        assert cost.seconds(shape) == max(kernels.seconds(shape), step_s)
        table, _ = cost.decode_steps(np.array([4]), np.array([4 * 128]))
        assert float(table[0]) == cost.seconds(shape)


def test_prefill_is_compute_bound_at_large_chunks() -> None:
    """8k-token prefill of an 8B model costs about 2 x 8e9 x 8192 FLOPs at 70% of peak."""
    dep = build_deployment("llama-3.1-8b", "h100-sxm")
    t = StepCost(dep).prefill_seconds(8192)
    flops = 2 * dep.model.params_active * 8192
    assert t > flops / 989.4e12
    assert t < 2.0 * flops / (989.4e12 * 0.7)


def test_quantized_weights_speed_up_decode() -> None:
    """Batch-1 decode is memory bound: int4 is faster than bf16 on the same GPU."""
    bf16 = StepCost(build_deployment("llama-3.1-8b", "a100-80gb")).decode_seconds(1, 512)
    int4 = StepCost(build_deployment("llama-3.1-8b", "a100-80gb", weights="int4-awq")).decode_seconds(1, 512)
    assert int4 < 0.6 * bf16


def test_tensor_parallel_speeds_up_but_adds_communication() -> None:
    """TP=4 is faster than TP=1 but slower than a perfect 4x."""
    one = StepCost(build_deployment("llama-3.1-70b", "h100-sxm", weights="fp8"))
    four = StepCost(build_deployment("llama-3.1-70b", "h100-sxm", weights="fp8", tp=4))
    t1, t4 = one.decode_seconds(32, 1024), four.decode_seconds(32, 1024)
    assert t1 / 4 < t4 < t1


def test_moe_reads_only_touched_experts_at_batch_one() -> None:
    """Qwen3-30B-A3B batch-1 decode reads ~3B, not 30B, parameters' worth of weights."""
    dep = build_deployment("qwen3-30b-a3b", "h100-sxm")
    t = StepCost(dep).decode_seconds(1, 128)
    full_read = dep.model.params_total * 2 / (3350e9 * 0.8)
    assert t < 0.3 * full_read


def test_chunk_pairs_closed_form() -> None:
    """Causal pairs of 3 new tokens after 2 cached: (3) + (4) + (5) = 12."""
    assert chunk_pairs(3, 2) == 12


@given(new=st.integers(1, 300), cached=st.integers(0, 300), window=st.integers(1, 200))
def test_window_pairs_match_brute_force(new: int, cached: int, window: int) -> None:
    """Sliding-window pairs equal the sum over tokens of min(position, window)."""
    brute = sum(min(cached + j, window) for j in range(1, new + 1))
    assert chunk_pairs_window(new, cached, window) == brute


@given(
    prefills=st.lists(st.tuples(st.integers(1, 2048), st.integers(0, 4096)), max_size=4),
    decodes=st.lists(st.integers(1, 8192), max_size=64),
    extra=st.integers(1, 1024),
)
def test_more_work_never_takes_less_time(prefills: list[tuple[int, int]], decodes: list[int], extra: int) -> None:
    """Adding a decode to a batch never makes the step shorter."""
    cost = StepCost(build_deployment("gemma-2-9b", "l40s"))
    base = cost.seconds(batch_shape(prefills, decodes, window=4096))
    more = cost.seconds(batch_shape(prefills, [*decodes, extra], window=4096))
    assert more >= base


def test_energy_is_between_idle_and_peak_power() -> None:
    """Joules per step lie between idle and peak power times the step time."""
    dep = build_deployment("llama-3.1-8b", "h100-sxm")
    seconds, joules = StepCost(dep).cost(batch_shape([(512, 0)], [1000] * 32))
    assert 70 * seconds <= joules <= 700 * seconds


def test_a_decode_shape_by_name_is_the_same_step() -> None:
    """BatchShape.decodes(k, ctx, window) names the fields a pure-decode step sets, and prices alike."""
    shape = BatchShape.decodes(4, 4 * 6000, 4 * 4096)
    assert shape == BatchShape(num_decodes=4, decode_ctx_tokens=24000, decode_ctx_window=16384, num_sampled=4)
    assert shape.num_tokens == shape.num_seqs == 4 and shape.prefill_tokens == shape.num_prefills == 0
    cost = StepCost(build_deployment("gemma-2-9b", "a100-80gb"))  # half its layers slide over 4096 tokens
    assert cost.seconds(shape) == cost.decode_seconds(4, 6000) > cost.seconds(BatchShape.decodes(4, 24000))
