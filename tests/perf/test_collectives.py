"""All-reduce pricing: the algorithm the engine picks by message size, and the fit that sets NCCL's terms."""

from __future__ import annotations

from pathlib import Path

import pytest

from inferplan.errors import InputError
from inferplan.measure.collectives_fit import fit_nccl, read_allreduce_points
from inferplan.perf.collectives import allreduce_for, nccl_fit_for
from inferplan.specs.catalog import get_device, get_engine

KIB = 1024


def test_nccl_is_latency_plus_ring_bytes_over_the_fitted_bus() -> None:
    """Shipped fit for 8x H100 (NVSwitch): above the custom kernel's 8 MiB, a 64 MiB all-reduce costs the
    fitted latency plus 2 x 7/8 x 64 MiB over the fitted bus bandwidth."""
    fit = nccl_fit_for(get_device("h100-sxm"))
    assert "h200" in fit.applies_to  # same NVLink 4 and NVSwitch
    ar = allreduce_for(get_device("h100-sxm"), get_engine("vllm"), 8, 16 * KIB)
    size = 64 * 1024 * KIB
    expect = fit.latency_us[8] * 1e-6 + 2 * 7 / 8 * size / (fit.bus_gb_s[8] * 1e9)
    assert ar.seconds(size) == pytest.approx(expect)


def test_each_engine_takes_its_small_message_kernel_by_its_own_rule() -> None:
    """Llama-3.1-70B (16 KiB of activations per token) at TP4 on H100: vLLM's custom kernel takes any message
    up to 8 MiB (512 tokens); TensorRT-LLM's min-latency kernel up to 128 tokens, NCCL above."""
    h100, token = get_device("h100-sxm"), 16 * KIB
    nccl = nccl_fit_for(h100).latency_us[4] * 1e-6
    vllm = allreduce_for(h100, get_engine("vllm"), 4, token)
    trt = allreduce_for(h100, get_engine("trtllm"), 4, token)
    assert vllm.seconds(256 * token) - vllm.seconds(0.0001) == pytest.approx(
        2 * 3 / 4 * 256 * token / vllm.bus_bytes_per_s, rel=1e-3)
    assert vllm.custom_latency_s == pytest.approx(9.5e-6) and vllm.custom_max_bytes == 8 * 1024 * KIB
    assert trt.seconds(128 * token) < nccl < trt.seconds(129 * token)
    # on PCIe-only GPUs more than two devices never use the custom kernel (vLLM needs full NVLink)
    assert allreduce_for(get_device("l40s"), get_engine("vllm"), 4, token).custom_max_bytes == 0


def test_fit_recovers_a_known_latency_and_bus(tmp_path: Path) -> None:
    """Timings made from latency 20 us and bus 300 GB/s at four workers fit back to exactly those."""
    folder = tmp_path / "h100_dgx"
    folder.mkdir()
    lines = [",time_stats.all_reduce.median,num_workers,size,devices_per_node"]
    for i, size in enumerate(2 ** k for k in range(11, 27)):
        ms = (20e-6 + 2 * 3 / 4 * size / 300e9) * 1e3
        lines.append(f"{i},{ms},4,{size},4")
    (folder / "all_reduce.csv").write_text("\n".join(lines) + "\n")
    fit = fit_nccl(read_allreduce_points(tmp_path))["h100-sxm"]
    assert fit.latency_us == {4: 20.0} and fit.bus_gb_s == {4: 300.0} and fit.median_error_pct == 0.0


def test_a_measurement_file_with_a_wrong_column_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "a100_dgx").mkdir()
    (tmp_path / "a100_dgx" / "all_reduce.csv").write_text("size,median_ms\n2048,0.01\n")
    with pytest.raises(InputError, match=r"all_reduce.csv: missing column\(s\) time_stats.all_reduce.median"):
        read_allreduce_points(tmp_path)
