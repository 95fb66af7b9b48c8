"""Microbenchmarks of a CUDA GPU with PyTorch: GEMMs by shape and dtype, memory bandwidth, attention
prefill and decode, kernel launch time and eager-PyTorch overhead.

The result is the same profile format the CPU path writes. Where the GPU is a catalog device (matched
by its CUDA name and memory, or named with ``--as``), the datasheet peaks stay and the measured rates
become efficiencies against them, so the profile prices that catalog device the way this machine's
kernels run it. Otherwise the measured peaks become the datasheet of ``local``. The sweep runs on any
torch device (tests run it on the CPU); CUDA adds event timing and FP8 scaled GEMMs.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

import numpy as np

from inferplan.measure.microbench import (
    Progress,
    _torch,
    best_time,
    eager_overhead,
    fit_eager_overhead,
    fit_matmul_curve,
)
from inferplan.perf.profile import DeviceProfile
from inferplan.specs.hardware import DeviceSpec

# (out, in) of the linears of a Llama-3-70B layer: attention projection, gated MLP up, MLP down; at TP 1
# and TP 4 (a quarter of the split dimension), so the curve covers the shapes tensor parallelism runs
SHAPES = ((8192, 8192), (57344, 8192), (8192, 28672), (2048, 8192), (14336, 8192), (8192, 7168))
QUICK_SHAPES = ((8192, 8192), (14336, 8192))
ROWS = (1, 4, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192)
QUICK_ROWS = (1, 16, 128, 1024)
FP8_MIN_ROWS = 16  # torch._scaled_mm wants every dimension a multiple of 16


@dataclass
class GpuMeasurements:
    """Raw results; kept in the profile file so a fit can be checked or redone."""

    backend: str  # "cuda", or "cpu" when the sweep ran on a CPU
    name: str  # as torch reports the device
    memory_gib: float
    multiprocessors: int
    matmul: list[dict[str, float | str]] = field(default_factory=list)  # dtype, m, n, k, seconds
    bandwidth: dict[str, float] = field(default_factory=dict)  # GB/s: copy, read
    attention: list[dict[str, float | str]] = field(default_factory=list)  # phase, batch, q, k, heads, ..., seconds
    launch_s: float = 0.0  # one tiny kernel, launched back to back
    overhead: list[dict[str, float]] = field(default_factory=list)  # tiny Llama decode steps: layers, batch, s
    notes: list[str] = field(default_factory=list)


def device_timer(torch: Any, device: Any) -> Callable[..., float]:
    """Fastest seconds of one call: CUDA events around back-to-back calls on a GPU, the wall clock elsewhere."""
    if device.type != "cuda":
        return best_time

    def timed(fn: Callable[[], object], *, min_time_s: float = 0.05, max_reps: int = 200) -> float:
        fn()
        torch.cuda.synchronize(device)
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        once = max(start.elapsed_time(end) * 1e-3, 1e-6)
        calls = int(min(max_reps, max(1, min_time_s / 3 / once)))
        best = once
        for _ in range(3):  # three batches of calls: the fastest is the least disturbed
            start.record()
            for _ in range(calls):
                fn()
            end.record()
            end.synchronize()
            best = min(best, start.elapsed_time(end) * 1e-3 / calls)
        return float(best)

    return timed


def measure_gpu(progress: Progress | None = None, *, quick: bool = False, device: str = "cuda") -> GpuMeasurements:
    """Run the sweep on ``device`` (a torch device string)."""
    torch = _torch()
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        from inferplan.errors import InputError

        raise InputError("`inferplan profile --cuda`: this PyTorch sees no CUDA GPU (torch.cuda.is_available() is "
                         "False); install a CUDA build of torch on a machine with an NVIDIA GPU, or drop --cuda")
    note = progress or (lambda what, frac: None)
    res = _describe(torch, dev)
    timer = device_timer(torch, dev)
    with torch.inference_mode():
        _matmuls(torch, dev, timer, res, note, quick)
        note("memory bandwidth", 0.8)
        _bandwidth(torch, dev, timer, res, quick)
        note("attention", 0.85)
        _attention(torch, dev, timer, res, quick)
        note("kernel launch and eager overhead", 0.95)
        one = torch.zeros(1, device=dev)
        res.launch_s = timer(lambda: one.add_(1.0), min_time_s=0.05)
        res.overhead = eager_overhead(torch, device, timer)
    note("done", 1.0)
    return res


def _describe(torch: Any, dev: Any) -> GpuMeasurements:
    if dev.type != "cuda":
        import os
        import platform

        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30 if hasattr(os, "sysconf") else 8.0
        return GpuMeasurements("cpu", platform.processor() or platform.machine(), memory, os.cpu_count() or 1)
    props = torch.cuda.get_device_properties(dev)
    return GpuMeasurements("cuda", str(props.name), props.total_memory / 2**30, int(props.multi_processor_count))


def _matmuls(torch: Any, dev: Any, timer: Callable[..., float], res: GpuMeasurements, note: Progress,
             quick: bool) -> None:
    shapes: tuple[tuple[int, int], ...] = QUICK_SHAPES if quick or dev.type != "cuda" else SHAPES
    rows: tuple[int, ...] = QUICK_ROWS if quick or dev.type != "cuda" else ROWS
    if dev.type != "cuda":  # the same code path at a size a CPU times in seconds
        shapes, rows = tuple((n // 8, k // 8) for n, k in shapes), tuple(r for r in rows if r <= 128)
    fp8 = _fp8_matmul(torch, dev)
    if fp8 is None:
        res.notes.append("no FP8 GEMMs: they need CUDA compute capability 8.9 or newer (Ada, Hopper, Blackwell)")
    linear = torch.nn.functional.linear
    for i, (n, k) in enumerate(shapes):
        w = torch.randn(n, k, dtype=torch.bfloat16, device=dev)
        w8 = w.to(torch.float8_e4m3fn) if fp8 else None
        for m in rows:
            note(f"GEMM {m} x {n} x {k}", 0.8 * (i + m / max(rows)) / len(shapes))
            x = torch.randn(m, k, dtype=torch.bfloat16, device=dev)
            res.matmul.append({"dtype": "bf16", "m": m, "n": n, "k": k, "seconds": timer(partial(linear, x, w))})
            if fp8 and w8 is not None and m >= FP8_MIN_ROWS:
                x8 = x.to(torch.float8_e4m3fn)
                res.matmul.append({"dtype": "fp8", "m": m, "n": n, "k": k, "seconds": timer(partial(fp8, x8, w8))})
        del w, w8


def _fp8_matmul(torch: Any, dev: Any) -> Callable[[Any, Any], Any] | None:
    """``x @ w.T`` in FP8 with bf16 output (the scaled GEMM engines run), where the GPU has FP8 tensor cores."""
    if dev.type != "cuda" or torch.cuda.get_device_capability(dev) < (8, 9) or not hasattr(torch, "_scaled_mm"):
        return None
    one = torch.ones((), dtype=torch.float32, device=dev)

    def run(x8: Any, w8: Any) -> Any:
        return torch._scaled_mm(x8, w8.t(), scale_a=one, scale_b=one, out_dtype=torch.bfloat16)

    try:
        probe = torch.zeros(16, 32, device=dev).to(torch.float8_e4m3fn)
        run(probe, torch.zeros(16, 32, device=dev).to(torch.float8_e4m3fn))
    except (RuntimeError, TypeError):
        return None
    return run


def _bandwidth(torch: Any, dev: Any, timer: Callable[..., float], res: GpuMeasurements, quick: bool) -> None:
    n_bytes = (256 if dev.type == "cuda" and not quick else 64) * 2**20 * (4 if dev.type == "cuda" else 1)
    src = torch.ones(n_bytes // 2, dtype=torch.bfloat16, device=dev)
    dst = torch.empty_like(src)
    res.bandwidth["copy_gb_s"] = 2 * n_bytes / timer(lambda: dst.copy_(src)) / 1e9
    res.bandwidth["read_gb_s"] = n_bytes / timer(lambda: src.sum()) / 1e9


def _attention(torch: Any, dev: Any, timer: Callable[..., float], res: GpuMeasurements, quick: bool) -> None:
    """Prefill (causal, one sequence) and decode (one query per sequence over a cache) through SDPA, with
    Llama-3-8B's heads (32 query, 8 KV, 128 wide)."""
    sdpa = torch.nn.functional.scaled_dot_product_attention
    heads, kv_heads, dim = (32, 8, 128) if dev.type == "cuda" else (8, 2, 64)
    big = dev.type == "cuda" and not quick
    cases = [("prefill", 1, n, n) for n in ((512, 2048, 8192) if big else (256, 512))]
    cases += [("decode", b, 1, k) for b, k in (((16, 1024), (16, 8192), (64, 2048)) if big else ((4, 512),))]
    for phase, batch, q, k in cases:
        qt = torch.randn(batch, heads, q, dim, dtype=torch.bfloat16, device=dev)
        kt = torch.randn(batch, kv_heads, k, dim, dtype=torch.bfloat16, device=dev)
        vt = torch.randn_like(kt)
        run = partial(sdpa, qt, kt, vt, is_causal=phase == "prefill", enable_gqa=True)
        res.attention.append({"phase": phase, "dtype": "bf16", "batch": batch, "q": q, "k": k, "heads": heads,
                              "kv_heads": kv_heads, "dim": dim, "seconds": timer(run)})


# ---- the fit ------------------------------------------------------------------------------------
_MODEL_NUMBER = re.compile(r"[A-Z]{0,3}\d{1,4}[A-Z]{0,2}")  # H100, A100, L40S, L4, T4, A10G, 4090, B200
_NOT_A_MODEL = re.compile(r"HBM|SXM|GDDR|\d+GB$")
_VARIANTS = {"PCIE", "TI", "SUPER", "NVL"}  # words that make another product of the same number
def catalog_match(name: str, memory_gib: float, devices: dict[str, DeviceSpec]) -> DeviceSpec | None:
    """The catalog GPU whose display name carries the CUDA name's model number (H100, A100, L40S, 4090) and
    whose memory is within 10%, PCIe and SXM told apart; None when none or several fit."""
    words = set(re.findall(r"[A-Z0-9]+", name.upper()))
    models = {w for w in words if _MODEL_NUMBER.fullmatch(w) and not _NOT_A_MODEL.match(w)}
    found = []
    for spec in devices.values():
        if spec.vendor != "NVIDIA" or not spec.is_gpu_like:
            continue
        theirs = set(re.findall(r"[A-Z0-9]+", spec.display_name.upper()))
        if not models or models - theirs or abs(spec.memory_gib - memory_gib) > 0.1 * spec.memory_gib:
            continue
        if words & _VARIANTS != theirs & _VARIANTS:
            continue
        found.append(spec)
    return found[0] if len(found) == 1 else None


def fit_gpu_profile(res: GpuMeasurements, catalog: DeviceSpec | None = None) -> DeviceProfile:
    """Efficiencies against ``catalog``'s datasheet when given, else against the measured peaks."""
    rate = {d: max(2 * float(r["m"]) * float(r["n"]) * float(r["k"]) / float(r["seconds"])
                   for r in res.matmul if r["dtype"] == d) for d in {str(r["dtype"]) for r in res.matmul}}
    read_bw = res.bandwidth["read_gb_s"] * 1e9
    one_row = [2 * float(r["n"]) * float(r["k"]) / float(r["seconds"]) for r in res.matmul
               if r["dtype"] == "bf16" and r["m"] == 1]
    gemv_bw = float(np.exp(np.mean(np.log(one_row))))  # what weight-streaming matrix-vector products reach
    spec = (catalog.model_copy(update={"name": "local", "aliases": ()}) if catalog
            else _measured_spec(res, rate, read_bw))
    peak16, peak_bw = spec.peak_flops("bf16"), spec.memory_bw_bytes_per_s
    curve = fit_matmul_curve(res.matmul, "bf16", peak16, gemv_bw, value_bytes=2)
    by_dtype = {"fp8": round(min(1.0, rate["fp8"] / spec.peak_flops("fp8")), 4)} if "fp8" in rate else {}
    prefill = [r for r in res.attention if r["phase"] == "prefill"]
    att_rate = max(2 * float(r["batch"]) * float(r["heads"]) * float(r["dim"]) * float(r["q"]) * float(r["k"])
                   / float(r["seconds"]) for r in prefill)  # causal: half of the 4 h d q k of a full pass
    step_s, layer_s, seq_s = fit_eager_overhead(res.overhead)
    today = datetime.now(UTC).date().isoformat()
    what = f"measured by `inferplan profile --cuda` on {today} ({res.name}, {res.backend})"
    return DeviceProfile(
        device="local", matmul_efficiency=round(curve.efficiency, 4), matmul_half_tokens=round(curve.half_rows, 3),
        matmul_curve_exponent=round(curve.exponent, 3), matmul_curve=curve.points, matmul_efficiency_by_dtype=by_dtype,
        attention_efficiency=round(min(1.0, att_rate / peak16), 4),
        bandwidth_efficiency=round(min(1.0, gemv_bw / peak_bw), 4),
        step_overhead_s=step_s, per_sequence_overhead_s=seq_s, per_layer_overhead_s=layer_s,
        source=what + (f", against the {catalog.name} datasheet" if catalog else ""), device_spec=spec,
        uncertainty={"matmul_log_rmse": curve.log_rmse},
        measurements={"backend": res.backend, "name": res.name, "multiprocessors": res.multiprocessors,
                      "matmul": res.matmul, "bandwidth": res.bandwidth, "attention": res.attention,
                      "launch_s": res.launch_s, "overhead": res.overhead, "notes": res.notes},
    )


def _measured_spec(res: GpuMeasurements, rate: dict[str, float], read_bw: float) -> DeviceSpec:
    """A GPU the catalog does not have: its measured peaks as its datasheet (power is unknown: a guess)."""
    kind = ("datacenter-gpu" if res.memory_gib >= 40 else "workstation-gpu") if res.backend == "cuda" else "cpu"
    peaks = {"bf16": rate["bf16"] / 1e12, "fp16": rate["bf16"] / 1e12} | (
        {"fp8": rate["fp8"] / 1e12} if "fp8" in rate else {})
    return DeviceSpec(
        name="local", display_name=f"this machine's {res.name}", kind=kind,
        vendor="NVIDIA" if res.backend == "cuda" else "",
        memory_gib=round(res.memory_gib, 2), memory_bw_gb_s=round(read_bw / 1e9, 1), peak_tflops=peaks,
        features=("fp8",) if "fp8" in rate else (), peak_power_w=300.0, idle_power_w=30.0,
        source=f"measured by `inferplan profile --cuda`: best GEMM and streaming-read rates of {res.name}",
        notes="power is a guess (300 W peak); nothing here measures it",
    )
