"""Microbenchmarks of the local machine with PyTorch: matmul, memory bandwidth, attention, framework overhead.

Each benchmark times a kernel until it has run for a minimum time and keeps the
fastest repetition (the least disturbed by other work on the machine). The
results become a DeviceProfile: measured peaks become the device's "datasheet"
and the fitted curves its efficiencies, so `fit`, `simulate` and `plan` price
steps the way this machine runs them. Needs the ``measure`` extra (torch).
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

import numpy as np
from scipy.optimize import least_squares

from inferplan.perf.profile import DeviceProfile
from inferplan.specs.hardware import DeviceSpec

Progress = Callable[[str, float], None]  # (what is running, fraction done)
Timer = Callable[..., float]  # (fn, *, min_time_s=...) -> fastest seconds of one call
DTYPES = ("fp32", "bf16")


def _torch() -> Any:
    try:
        import torch
    except ImportError:
        from inferplan.errors import InputError

        raise InputError("`inferplan profile` and `validate` need PyTorch: pip install 'inferplan[measure]'") from None
    return torch


def best_time(fn: Callable[[], object], *, min_time_s: float = 0.15, max_reps: int = 50) -> float:
    """Fastest of repeated runs after one warm-up, repeating until ``min_time_s`` has passed."""
    fn()
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < 3 or (time.perf_counter() - start < min_time_s and len(times) < max_reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


@dataclass
class Measurements:
    """Raw results; kept in the profile file so a fit can be checked or redone."""

    matmul: list[dict[str, float | str]] = field(default_factory=list)  # dtype, m, n, k, seconds
    bandwidth: dict[str, float] = field(default_factory=dict)  # GB/s: copy, read, gemv
    attention: list[dict[str, float | str]] = field(default_factory=list)  # dtype, q, k, heads, dim, seconds
    overhead: list[dict[str, float]] = field(default_factory=list)  # layers, batch, seconds


def measure(progress: Progress | None = None, *, quick: bool = False) -> Measurements:
    torch = _torch()
    torch.set_num_threads(os.cpu_count() or 1)
    note = progress or (lambda what, frac: None)
    res = Measurements()
    dt = {"fp32": torch.float32, "bf16": torch.bfloat16}
    size = 1024 if quick else 2048
    ms = (1, 4, 16, 64, 256) if quick else (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048)
    steps = len(DTYPES) * len(ms) + 6
    done = 0
    with torch.inference_mode():
        fp32_rate = 0.0
        for name in DTYPES:
            # weights as nn.Linear stores them, (out, in), multiplied by F.linear: the layout models use
            # three shapes of equal size (64 MiB in fp32: larger than a CPU's last-level cache, so a
            # one-row product streams from memory as it does in a real model)
            w = torch.randn(2 * size, 2 * size, dtype=dt[name])  # attention projections
            wide = torch.randn(4 * size, size, dtype=dt[name])  # MLP up/gate
            deep = torch.randn(size, 4 * size, dtype=dt[name])  # MLP down: long inner dimension
            linear = torch.nn.functional.linear
            sweep: tuple[int, ...] = ms
            if name != "fp32":
                # a dtype without native kernels (bf16 on most x86 CPUs) can be 100x slower: probe it first
                probe = torch.randn(64, 2 * size, dtype=dt[name])
                rate = 2 * 64 * 4 * size * size / best_time(partial(linear, probe, w), min_time_s=0.0)
                if rate < 0.25 * fp32_rate:
                    sweep = (1, 64)
            for m in sweep:
                note(f"matmul {name} {m} rows", done / steps)
                for weight in (w, wide, deep) if name == "fp32" else (w,):
                    n, k = (int(d) for d in weight.shape)
                    x = torch.randn(m, k, dtype=dt[name])
                    sec = best_time(partial(linear, x, weight))
                    res.matmul.append({"dtype": name, "m": m, "n": n, "k": k, "seconds": sec})
                    if name == "fp32":
                        fp32_rate = max(fp32_rate, 2 * m * k * n / sec)
                done += 1
            done += len(ms) - len(sweep)
        note("memory bandwidth", done / steps)
        n_bytes = (64 if quick else 256) * 2**20
        src = torch.ones(n_bytes // 4, dtype=torch.float32)
        dst = torch.empty_like(src)
        res.bandwidth["copy_gb_s"] = 2 * n_bytes / best_time(lambda: dst.copy_(src)) / 1e9
        res.bandwidth["read_gb_s"] = n_bytes / best_time(lambda: src.sum()) / 1e9
        rows = n_bytes // 4 // 4096
        big = torch.randn(rows, 4096, dtype=torch.float32)
        vec = torch.randn(4096, dtype=torch.float32)
        res.bandwidth["gemv_gb_s"] = big.numel() * 4 / best_time(lambda: torch.mv(big, vec)) / 1e9
        done += 2
        heads, dim = 8, 64
        for q, k in ((1, 512), (1, 2048), (128, 128), (512, 512)) if not quick else ((1, 512), (128, 128)):
            note(f"attention q={q} k={k}", done / steps)
            qt = torch.randn(1, heads, q, dim)
            kt = torch.randn(1, heads, k, dim)
            vt = torch.randn(1, heads, k, dim)
            causal = q == k
            sdpa = torch.nn.functional.scaled_dot_product_attention
            res.attention.append({"dtype": "fp32", "q": q, "k": k, "heads": heads, "dim": dim,
                                  "causal": float(causal),
                                  "seconds": best_time(partial(sdpa, qt, kt, vt, is_causal=causal))})
        done += 2
        note("framework overhead", done / steps)
        res.overhead = eager_overhead(torch)
    note("done", 1.0)
    return res


def eager_overhead(torch: Any, device: str = "cpu", timer: Timer = best_time) -> list[dict[str, float]]:
    """Decode steps of tiny Llama models (hidden 64) at 1 and 4 layers: what eager PyTorch costs per step and layer."""
    from transformers import LlamaConfig, LlamaForCausalLM
    from transformers.cache_utils import DynamicCache

    out = []
    for layers in (1, 4):
        cfg = LlamaConfig(vocab_size=256, hidden_size=64, intermediate_size=128, num_hidden_layers=layers,
                          num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512)
        model = LlamaForCausalLM(cfg).to(device)  # type: ignore[arg-type]
        model.train(False)
        for batch in (1, 8):
            ids = torch.randint(0, 256, (batch, 16), device=device)
            cache = DynamicCache()
            key = cache_keyword(model)
            model(input_ids=ids, use_cache=True, **{key: cache})
            step = torch.randint(0, 256, (batch, 1), device=device)

            def run(step: Any = step, cache: Any = cache, key: str = key, model: Any = model) -> None:
                model(input_ids=step, use_cache=True, **{key: cache})
                cache.crop(-1)

            out.append({"layers": float(layers), "batch": float(batch), "seconds": timer(run, min_time_s=0.2)})
    return out


def cache_keyword(model: Any) -> str:
    """The forward() argument that takes a KV cache: ``cache`` in recent transformers, ``past_key_values`` before."""
    import inspect

    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


# Eager PyTorch on a CPU costs tens of microseconds to about a millisecond per layer and a few milliseconds per
# step (this project's profiles of idle 2- to 16-core machines); far above that, the machine was busy.
PLAUSIBLE_OVERHEAD_S = {"step_overhead_s": 0.05, "per_layer_overhead_s": 0.002, "per_sequence_overhead_s": 0.001}


def implausible(prof: DeviceProfile) -> list[str]:
    """Warnings for measured overheads no idle machine shows: they would inflate every prediction."""
    notes = []
    for name, limit in PLAUSIBLE_OVERHEAD_S.items():
        value = float(getattr(prof, name))
        if value > limit:
            notes.append(f"{name.removesuffix('_s').replace('_', ' ')} measured {value * 1e3:,.2f} ms, above the "
                         f"{limit * 1e3:g} ms an idle machine shows: something else was probably running; profile "
                         "again when the machine is idle, or predictions will be too slow")
    return notes


def fit_profile(res: Measurements) -> DeviceProfile:
    """Peaks and efficiency curves from raw measurements."""
    peaks = {}
    for name in DTYPES:
        rows = [r for r in res.matmul if r["dtype"] == name]
        peaks[name] = max(2 * float(r["m"]) * float(r["n"]) * float(r["k"]) / float(r["seconds"]) for r in rows)
    read_bw = res.bandwidth["read_gb_s"] * 1e9
    one_row = [4 * float(r["n"]) * float(r["k"]) / float(r["seconds"]) for r in res.matmul
               if r["dtype"] == "fp32" and r["m"] == 1]
    # what a model's matrix-vector products reach: one-row linears over weights larger than the caches
    gemv_bw = float(np.exp(np.mean(np.log(one_row)))) if one_row else res.bandwidth["gemv_gb_s"] * 1e9
    bw_eff = min(1.0, gemv_bw / read_bw)

    curve_fit = fit_matmul_curve(res.matmul, "fp32", peaks["fp32"], gemv_bw, value_bytes=4)
    eff, half, curve_a, curve = curve_fit.efficiency, curve_fit.half_rows, curve_fit.exponent, curve_fit.points

    att = [r for r in res.attention if float(r["q"]) > 1]
    att_rates = [4 * float(r["heads"]) * float(r["dim"]) * float(r["q"]) * float(r["k"]) * (0.5 if r["causal"] else 1.0)
                 / float(r["seconds"]) for r in att]
    att_eff = min(1.0, max(att_rates) / peaks["fp32"]) if att_rates else 0.3

    step_s, layer_s, seq_s = fit_eager_overhead(res.overhead)

    total_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30 if hasattr(os, "sysconf") else 8.0
    cores = os.cpu_count() or 1
    today = datetime.now(UTC).date().isoformat()
    spec = DeviceSpec(
        name="local", display_name=f"this machine ({platform.processor() or platform.machine()}, {cores} cores)",
        kind="cpu", memory_gib=round(total_gib, 2), usable_memory_fraction=0.8, memory_bw_gb_s=round(read_bw / 1e9, 2),
        peak_tflops={"fp32": peaks["fp32"] / 1e12, "bf16": peaks["bf16"] / 1e12},
        features=(), peak_power_w=15.0 * cores, idle_power_w=2.0 * cores,
        source=f"measured by `inferplan profile` on {today}: best matmul and streaming-read rates",
        notes="power is an estimate (15 W per core); nothing on this machine measures it",
    )
    return DeviceProfile(
        device="local", matmul_efficiency=round(eff, 4), matmul_half_tokens=round(half, 3),
        matmul_curve_exponent=round(curve_a, 3), matmul_curve=tuple(curve),
        attention_efficiency=round(att_eff, 4), bandwidth_efficiency=round(bw_eff, 4),
        step_overhead_s=step_s, per_sequence_overhead_s=seq_s, per_layer_overhead_s=layer_s,
        source=f"measured by `inferplan profile` on {today}", device_spec=spec,
        uncertainty={"matmul_log_rmse": curve_fit.log_rmse},
        measurements={"matmul": res.matmul, "bandwidth": res.bandwidth, "attention": res.attention,
                      "overhead": res.overhead},
    )


@dataclass(frozen=True, slots=True)
class MatmulCurve:
    """A fitted matmul curve: ``time = max(flops / (peak x eff x m^a / (m^a + half^a)), bytes / gemv_bw)``."""

    efficiency: float
    half_rows: float
    exponent: float
    points: tuple[tuple[float, float], ...]  # (rows, achieved share of peak: geometric mean over shapes)
    log_rmse: float


def fit_matmul_curve(rows: list[dict[str, float | str]], dtype: str, peak: float, gemv_bw: float, *,
                     value_bytes: float) -> MatmulCurve:
    """Least squares on log time over the ``dtype`` matmuls timed at several row counts and shapes."""
    sel = [r for r in rows if r["dtype"] == dtype]
    m = np.array([float(r["m"]) for r in sel])
    n = np.array([float(r["n"]) for r in sel])
    k = np.array([float(r["k"]) for r in sel])
    flops = 2 * m * n * k
    nbytes = value_bytes * (n * k + m * (n + k))
    measured = np.array([float(r["seconds"]) for r in sel])

    def model(p: np.ndarray[Any, np.dtype[np.float64]]) -> np.ndarray[Any, np.dtype[np.float64]]:
        eff, h, a = p
        out: np.ndarray[Any, np.dtype[np.float64]] = np.maximum(flops / (peak * eff * m**a / (m**a + h**a)),
                                                                nbytes / gemv_bw)
        return out

    points = []
    for mm in sorted(set(m.tolist())):
        at = m == mm
        points.append((float(mm), round(float(np.exp(np.mean(np.log(flops[at] / measured[at] / peak)))), 4)))
    fit = least_squares(lambda p: np.log(model(p)) - np.log(measured), x0=[0.9, 8.0, 1.0],
                        bounds=([0.05, 0.0, 0.5], [1.0, 512.0, 4.0]))
    resid = np.log(model(fit.x)) - np.log(measured)
    eff, half, a = (float(v) for v in fit.x)
    return MatmulCurve(eff, half, a, tuple(points), float(np.sqrt(np.mean(resid**2))))


def fit_eager_overhead(rows: list[dict[str, float]]) -> tuple[float, float, float]:
    """(per step, per layer, per sequence) seconds: ``seconds = a + b x layers + c x batch`` over the tiny models'
    steps, whose kernels are negligible next to the dispatch."""
    a_mat = np.array([[1.0, r["layers"], r["batch"]] for r in rows])
    y = np.array([r["seconds"] for r in rows])
    coef, *_ = np.linalg.lstsq(a_mat, y, rcond=None)
    step_s, layer_s, seq_s = (max(0.0, float(c)) for c in coef)
    return step_s, layer_s, seq_s
