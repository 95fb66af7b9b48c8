"""`inferplan profile --cuda`: the fit recovers known efficiencies from timings made by a closed form, CUDA names
map to catalog devices, the sweep itself runs on any torch device, and on a machine with a GPU the whole path
(profile, then validate on the GPU) runs end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from inferplan.measure.gpu_bench import GpuMeasurements, catalog_match, fit_gpu_profile, measure_gpu
from inferplan.perf.fit import fit
from inferplan.perf.profile import DeviceProfile
from inferplan.perf.resolve import resolve_deployment
from inferplan.specs.catalog import device_catalog

CLI = [sys.executable, "-m", "inferplan.cli"]
H100 = device_catalog()["h100-sxm"]
# the efficiencies the synthetic GPU runs at: large bf16 GEMMs, rows at half of it, weight streaming, fp8, attention
EFF, HALF, STREAM, FP8, ATTN = 0.70, 64.0, 0.85, 0.60, 0.45


def _gemm_seconds(m: int, n: int, k: int, eff: float, peak: float, value_bytes: float) -> float:
    compute = 2 * m * n * k / (peak * eff * m / (m + HALF))
    memory = value_bytes * (n * k + m * (n + k)) / (H100.memory_bw_bytes_per_s * STREAM)
    return max(compute, memory)


def synthetic_h100() -> GpuMeasurements:
    res = GpuMeasurements("cuda", "NVIDIA H100 80GB HBM3", 79.1, 132)
    for n, k in ((8192, 8192), (14336, 8192)):
        for m in (1, 16, 64, 256, 1024, 4096, 8192):
            res.matmul.append({"dtype": "bf16", "m": m, "n": n, "k": k,
                               "seconds": _gemm_seconds(m, n, k, EFF, H100.peak_flops("bf16"), 2)})
            res.matmul.append({"dtype": "fp8", "m": m, "n": n, "k": k,
                               "seconds": _gemm_seconds(m, n, k, FP8, H100.peak_flops("fp8"), 1)})
    res.bandwidth = {"read_gb_s": 3000.0, "copy_gb_s": 2800.0}
    q = 4096  # causal prefill: 2 h d q k flops
    res.attention = [{"phase": "prefill", "dtype": "bf16", "batch": 1, "q": q, "k": q, "heads": 32, "kv_heads": 8,
                      "dim": 128, "seconds": 2 * 32 * 128 * q * q / (H100.peak_flops("bf16") * ATTN)}]
    # eager steps: 2 ms + 0.1 ms per layer + 0.01 ms per sequence
    res.overhead = [{"layers": float(layers), "batch": float(b), "seconds": 2e-3 + 1e-4 * layers + 1e-5 * b}
                    for layers in (1, 4) for b in (1, 8)]
    return res


def test_the_fit_recovers_the_efficiencies_the_timings_were_made_with() -> None:
    prof = fit_gpu_profile(synthetic_h100(), H100)
    assert prof.matmul_efficiency == pytest.approx(EFF, rel=0.02)
    assert prof.matmul_half_tokens == pytest.approx(HALF, rel=0.05)
    assert prof.matmul_curve_exponent == pytest.approx(1.0, rel=0.05)
    # one-row GEMMs stream the weights: 2 n k bytes over (n k + n + k) x 2 bytes' time is STREAM within 0.03%
    assert prof.bandwidth_efficiency == pytest.approx(STREAM, rel=1e-3)
    # the best fp8 rate is at 8,192 rows: FP8 x 8192 / (8192 + 64) of the fp8 peak
    assert prof.matmul_efficiency_by_dtype["fp8"] == pytest.approx(FP8 * 8192 / (8192 + HALF), rel=1e-3)
    assert prof.attention_efficiency == pytest.approx(ATTN, rel=1e-6)
    assert prof.step_overhead_s == pytest.approx(2e-3, rel=1e-6)
    assert prof.per_layer_overhead_s == pytest.approx(1e-4, rel=1e-6)
    assert prof.per_sequence_overhead_s == pytest.approx(1e-5, rel=1e-6)
    spec = prof.device_spec
    assert spec is not None and spec.name == "local" and spec.kind == "datacenter-gpu"
    assert spec.peak_tflops == H100.peak_tflops and spec.memory_bw_gb_s == H100.memory_bw_gb_s  # the datasheet's


def test_a_gpu_the_catalog_lacks_gets_its_measured_peaks() -> None:
    res = synthetic_h100()
    prof = fit_gpu_profile(res, None)
    spec = prof.device_spec
    assert spec is not None and spec.memory_bw_gb_s == 3000.0 and spec.kind == "datacenter-gpu"
    best16 = max(2 * float(r["m"]) * float(r["n"]) * float(r["k"]) / float(r["seconds"]) for r in res.matmul
                 if r["dtype"] == "bf16")
    assert spec.peak_tflops["bf16"] == pytest.approx(best16 / 1e12)


@pytest.mark.parametrize(("cuda_name", "memory_gib", "device"), [
    # names as torch.cuda.get_device_name prints them, with total memory in GiB
    ("NVIDIA H100 80GB HBM3", 79.1, "h100-sxm"), ("NVIDIA H100 PCIe", 79.1, "h100-pcie"),
    ("NVIDIA A100-SXM4-80GB", 79.2, "a100-80gb"), ("NVIDIA A100-SXM4-40GB", 39.4, "a100-40gb"),
    ("NVIDIA A100 80GB PCIe", 79.2, "a100-pcie-80gb"), ("NVIDIA L4", 22.0, "l4"), ("NVIDIA H200", 139.8, "h200"),
    ("NVIDIA GeForce RTX 4090", 23.6, "rtx-4090"), ("NVIDIA GeForce RTX 3090 Ti", 23.6, "rtx-3090-ti"),
    ("NVIDIA RTX 6000 Ada Generation", 47.5, "rtx-6000-ada"), ("Tesla T4", 14.6, "t4"),
    ("NVIDIA H100 NVL", 93.1, None),  # not in the catalog: not mistaken for the SXM or PCIe card
])
def test_cuda_names_map_to_catalog_devices(cuda_name: str, memory_gib: float, device: str | None) -> None:
    found = catalog_match(cuda_name, memory_gib, dict(device_catalog()))
    assert (found.name if found else None) == device


def test_the_sweep_runs_on_any_torch_device(tmp_path: Path) -> None:
    """The GPU sweep's code path on this CPU (small shapes, wall-clock timing): a profile fit and simulate use."""
    res = measure_gpu(device="cpu", quick=True)
    assert res.backend == "cpu" and {r["dtype"] for r in res.matmul} == {"bf16"}
    assert any("FP8" in n for n in res.notes) and res.launch_s > 0
    prof = fit_gpu_profile(res)
    prof.dump(tmp_path / "p.yaml")
    loaded = DeviceProfile.load(tmp_path / "p.yaml")
    assert loaded.device_spec is not None and loaded.device_spec.kind == "cpu"
    result = fit(resolve_deployment("llama-3.2-1b", "local", weights="bf16", kv="bf16", profile=loaded), context=4096)
    assert result.decode_tokens_per_s_batch1 > 0


def _cli(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"INFERPLAN_REGISTRY": str(tmp / "runs.sqlite"), "INFERPLAN_PROFILE": str(tmp / "local.yaml")}
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=900, cwd=tmp, env=env)


def _has_cuda() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def test_bad_profile_options_are_one_line(tmp_path: Path) -> None:
    r = _cli(tmp_path, "profile", "--as", "h100-sxm")
    assert r.returncode == 2 and "use it with --cuda" in r.stderr and "Traceback" not in r.stderr
    if not _has_cuda():  # where torch sees no GPU, --cuda says so and what to install
        r = _cli(tmp_path, "profile", "--cuda")
        assert r.returncode == 2 and "sees no CUDA GPU" in r.stderr and "Traceback" not in r.stderr
        assert not (tmp_path / "local.yaml").exists()


def test_profile_then_validate_on_the_gpu(tmp_path: Path) -> None:
    if not _has_cuda():
        pytest.skip("needs a CUDA GPU and a CUDA build of torch: this torch sees none "
                    "(on a GPU machine: pip install torch, then run this test)")
    r = _cli(tmp_path, "profile", "--cuda", "--quick", "--json")
    assert r.returncode == 0, r.stderr
    prof = DeviceProfile.load(tmp_path / "local.yaml")
    assert prof.measurements["backend"] == "cuda" and 0 < prof.matmul_efficiency <= 1
    v = _cli(tmp_path, "validate", "llama-3.2-1b", "--dtype", "bf16", "--layers", "2", "--batches", "1,8",
             "--contexts", "512", "--prompts", "128,512", "--json")
    assert v.returncode == 0, v.stderr
    s = json.loads(v.stdout)
    assert s["backend"] == "cuda"
    assert all(0.2 < p["predicted_s"] / p["measured_s"] < 5 for p in s["points"])  # units, not accuracy
