"""llama.cpp: kernel paths, memory as mapped, llama-bench's tests, and the calibration bars on published rows."""

from __future__ import annotations

import statistics
from pathlib import Path

import pytest

from inferplan.measure.llama_bench import BenchSetup, _pipelined, generate_tokens_per_s, prompt_tokens_per_s
from inferplan.perf.memory import max_context, plan_memory, slot_cells
from inferplan.perf.resolve import resolve_deployment
from inferplan.perf.step_cost import StepCost
from inferplan.specs.catalog import get_device

MEASUREMENTS = Path(__file__).resolve().parents[3] / "shared" / "data" / "measurements"
TABLE = MEASUREMENTS / "llamacpp_xiongjiedai_llama3_gpus_apple.csv"


def test_gguf_prefill_runs_at_the_16_bit_rate_not_the_int8_peak() -> None:
    """Q4_K_M under llama.cpp on an RTX 4090: FP16-accumulate peak (330 TFLOP/s) x the gguf kernel efficiency."""
    dep = resolve_deployment("llama-3.1-8b", "rtx-4090", weights="gguf-q4_k_m", engine="llamacpp")
    dev, prof = get_device("rtx-4090"), dep.device_profile
    assert dev.peak_flops_fp16_accumulate() == pytest.approx(330.3e12)
    assert StepCost(dep).linear_flops_per_s == pytest.approx(330.3e12 * prof.matmul_efficiency_of("gguf"))
    assert StepCost(dep).linear_flops_per_s < dev.peak_flops("int8") * 0.5


def test_fp16_accumulate_is_llama_cpps_alone() -> None:
    """vLLM's 16-bit GEMMs accumulate in FP32: the datasheet's 165 TFLOP/s, not the FP16-accumulate figure."""
    vllm = resolve_deployment("llama-3.1-8b", "rtx-4090", weights="fp16", engine="vllm")
    assert StepCost(vllm).linear_flops_per_s == pytest.approx(165.2e12 * vllm.device_profile.matmul_efficiency)


def test_unfused_f32_traffic_and_the_score_matrix_without_flash_attention() -> None:
    """Per token: layers x (20 hidden + 7 intermediate) f32 values over the bandwidth; -fa off adds
    heads x 5 passes x 4 bytes per causal query-key pair."""
    on = resolve_deployment("llama-3.1-8b", "rtx-3090", weights="fp16", engine="llamacpp")
    off = resolve_deployment("llama-3.1-8b", "rtx-3090", weights="fp16", engine="llamacpp",
                             limits={"flash_attention": False})
    cost_on, cost_off = StepCost(on), StepCost(off)
    expected = 32 * (20 * 4096 + 7 * 14336) * 4 / cost_on.bw
    assert cost_on.unfused_s_per_token == pytest.approx(expected)
    assert cost_on.score_s_per_pair == 0.0
    assert cost_off.score_s_per_pair == pytest.approx(32 * 5 * 4 / cost_off.bw)
    vllm = resolve_deployment("llama-3.1-8b", "rtx-3090", weights="fp16", engine="vllm")
    assert StepCost(vllm).unfused_s_per_token == 0


def test_generation_speed_is_the_exact_sum_of_its_decode_steps() -> None:
    """tgN: the trapezoid over a few contexts equals the token-by-token sum where the cost is linear."""
    cost = StepCost(resolve_deployment("llama-3.1-8b", "rtx-4090", weights="gguf-q4_k_m", engine="llamacpp"))
    exact = 300 / sum(cost.decode_seconds(1, c) for c in range(300))
    assert generate_tokens_per_s(cost, 300) == pytest.approx(exact, rel=1e-9)


def test_layer_split_pipelines_ubatches_within_a_batch() -> None:
    """Four 1 s ubatches over two devices: 0.5 s stages, the last leaves after 4 x 0.5 + 0.5 s."""
    assert _pipelined([1.0, 1.0, 1.0, 1.0], 2) == pytest.approx(2.5)
    assert _pipelined([1.0], 4) == 1.0  # one ubatch (pp512) crosses the devices in turn: no speed-up
    dep = resolve_deployment("llama-3.1-8b", "rtx-4090", weights="gguf-q4_k_m", engine="llamacpp", pp=4)
    cost = StepCost(dep)
    one, four = prompt_tokens_per_s(cost, 4096), prompt_tokens_per_s(cost, 4096, BenchSetup(devices=4))
    assert 2.0 < four / one < 16 / 7 + 1e-9  # 4 ubatches of a batch over 4 stages: at most 16/7 faster


def test_memory_as_mapped_fits_what_llama_cpp_runs() -> None:
    """No utilisation fraction: 70B Q4_K_M (39.6 GB) on one 48 GB card, and 70B F16 (131 GiB) on a 192 GB
    M2 Ultra, both measured by llama-bench (XiongjieDai's table)."""
    for device, weights in (("rtx-a6000", "gguf-q4_k_m"), ("m2-ultra-192gb", "fp16")):
        dep = resolve_deployment("llama-3.1-70b", device, weights=weights, kv="fp16", engine="llamacpp",
                                 limits={"max_num_seqs": 1, "max_num_batched_tokens": 512})
        assert max_context(dep, plan_memory(dep)) >= 8192, device


def test_slots_allocate_their_cells_up_front() -> None:
    """-np 4 with 4,100 tokens each: 4 x 4,352 cells (rounded to 256), or nothing when that does not fit."""
    assert slot_cells(4100) == 4352
    dep = resolve_deployment("llama-3.2-1b", "raspberry-pi-5", weights="gguf-q4_k_m", engine="llamacpp",
                             limits={"max_num_seqs": 4, "slot_context": 4100})
    assert plan_memory(dep).kv_capacity_tokens == 4 * 4352
    huge = resolve_deployment("llama-3.2-1b", "raspberry-pi-5", weights="gguf-q4_k_m", engine="llamacpp",
                              limits={"max_num_seqs": 64, "slot_context": 131072})
    assert not plan_memory(huge).fits


needs_table = pytest.mark.skipif(not TABLE.exists(), reason=f"the shared calibration table is not at {TABLE}")


@needs_table
def test_calibration_bars_per_backend() -> None:
    """The shipped profiles: pp and tg each within 15% median error per backend (CUDA, Metal)."""
    from inferplan.measure.llamacpp_cases import read_bench_rows, speed_cases

    errors: dict[tuple[str, str], list[float]] = {}
    for c in speed_cases(read_bench_rows(MEASUREMENTS)):
        backend = "metal" if get_device(c.device).kind == "apple-soc" else "cuda"
        errors.setdefault((backend, c.test[:2]), []).append(abs(c.predicted / c.measured - 1))
    assert set(errors) == {(b, p) for b in ("cuda", "metal") for p in ("pp", "tg")}
    for key, errs in errors.items():
        assert statistics.median(errs) <= 0.15, (key, statistics.median(errs))


@needs_table
def test_every_configuration_that_ran_is_predicted_to_fit() -> None:
    """All but the 8 GB M1 at 4,096 tokens, which ran past macOS's recommended GPU working set (5.33 of 8 GiB:
    weights 4.58, KV 0.5, compute 0.25): llama.cpp's Metal backend only warns there (ggml-metal), and the
    catalog keeps the recommended limit as the budget, so the verdict errs on the safe side."""
    from inferplan.measure.accuracy_run import memory_check

    check = memory_check(MEASUREMENTS)
    assert check is not None and check.ran > 400 and check.oom_predicted_oom == check.oom
    assert all(miss.startswith("8B Q4_K_M on M1 7-Core GPU 8GB") for miss in check.misses), check.misses
    assert check.ran_predicted_fit >= check.ran - 2


def test_fit_answers_headroom_and_energy_on_a_pi() -> None:
    """Llama 3.2 3B Q4_K_M on a Pi 5 at 4,096 tokens: 8 GiB less weights, compute buffer and that one
    conversation's KV is left for the OS (the CPU backend holds no device context to reserve); a token's energy
    lies between idle and peak power over its step."""
    from inferplan.perf.fit import fit
    from inferplan.perf.memory import GIB

    dep = resolve_deployment("llama-3.2-3b", "raspberry-pi-5", weights="gguf-q4_k_m", engine="llamacpp")
    r = fit(dep, context=4096)
    mem = plan_memory(dep)
    kv = 4096 * dep.model.kv_bytes_per_token(dep.kv.bytes_per_value)
    expected = 8 * GIB - mem.weights_bytes - mem.activation_bytes - kv
    assert mem.overhead_bytes == 0 and r.unified_memory and r.headroom_bytes == pytest.approx(expected, rel=1e-9)
    step = 1 / r.decode_tokens_per_s_batch1
    assert 2.7 * step < r.energy_per_token_j <= 12 * step  # the Pi 5's idle and peak watts


def test_fit_says_how_much_room_is_left_in_a_terminal() -> None:
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "inferplan.cli", "fit", "llama-3.2-3b", "raspberry-pi-5", "--weights",
                        "gguf-q4_k_m", "--context", "4096"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "for the OS and other apps" in r.stdout and "J per generated token" in r.stdout


def test_llama_cpp_predictions_carry_their_own_residual_ranges() -> None:
    """Under llama.cpp the ranges come from the llama-bench residuals (pp, tg), not vLLM's TTFT and ITL."""
    from inferplan.perf.fit import fit
    from inferplan.perf.ranges import spread_for

    dep = resolve_deployment("llama-3.1-8b", "rtx-4090", weights="gguf-q4_k_m", engine="llamacpp")
    r = fit(dep, context=4096)
    tg = spread_for("workstation-gpu", "tg")
    assert tg is not None and r.ranges["decode_tokens_per_s_batch1"] == pytest.approx(
        tg.truth_range(r.decode_tokens_per_s_batch1))
    lo, hi = r.ranges["ttft_s"]
    assert lo < r.ttft_s * 1.2 and hi > r.ttft_s * 0.8 and lo < hi
