"""Fit a device profile's efficiencies to measured step times, with an uncertainty estimate.

Observations are steps whose shape is known and whose time was measured: the
points of `inferplan validate` runs, and the prompt-processing / generation rows
of llama.cpp's `llama-bench` (JSON or its markdown table). Three factors scale
the profile: compute (matmul and attention rates), memory bandwidth and the
per-step overheads. They are fitted by least squares on log(predicted/measured),
so a 10% miss counts the same on a 1 ms and a 1 s step. The standard errors come
from the Jacobian at the solution; the residual spread becomes the profile's
``step_time_log_sd``, which predictions show as a range.

Bench runs are fitted the same way through the simulator (`fit_to_bench`): the
factors that make simulated TTFT, TPOT and E2E medians match the measured ones.
"""

from __future__ import annotations

import json
import math
import re
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import least_squares

from inferplan.errors import InputError
from inferplan.perf.profile import DeviceProfile
from inferplan.perf.resolve import resolve_deployment
from inferplan.perf.step_cost import BatchShape, StepCost, batch_shape
from inferplan.sim.summary_types import Summary
from inferplan.specs.catalog import get_device, get_model, get_weight_format
from inferplan.specs.hardware import DeviceSpec
from inferplan.specs.model import ModelSpec

FACTORS = ("compute", "bandwidth", "overhead", "sequence")  # sequence: the per-sequence share of the overhead
DEFAULT_FIT = ("compute", "bandwidth", "overhead")
_BOUND = 8.0  # factors within e^-8 .. e^8: a Python server's per-step cost can be 1000x a C++ engine's


@dataclass(frozen=True, slots=True)
class Observation:
    """A step of ``model`` in ``weights``/``kv`` formats, of ``shape``, that took ``seconds``."""

    model: ModelSpec
    weights: str
    kv: str
    shape: BatchShape
    seconds: float
    source: str


def scaled_profile(base: DeviceProfile, device: DeviceSpec,
                   factors: Sequence[float]) -> tuple[DeviceProfile, DeviceSpec]:
    """The profile (and device) with compute, bandwidth, per-step and per-sequence overhead multiplied by ``factors``.

    Efficiencies stay at most 1: beyond that the device's own peak moves, which is only
    right for a measured device (``local``); a catalog device's efficiency is capped.
    """
    c, b, o, q = factors
    eff = base.matmul_efficiency * c
    att = min(1.0, base.attention_efficiency * c)
    bw = base.bandwidth_efficiency * b
    spec = device
    if base.device_spec is not None and (eff > 1 or bw > 1):
        peak = {k: v * max(1.0, eff) for k, v in device.peak_tflops.items()}
        spec = device.model_copy(update={"peak_tflops": peak, "memory_bw_gb_s": device.memory_bw_gb_s * max(1.0, bw)})
    curve = tuple((r, min(1.0, e * c / max(1.0, eff))) for r, e in base.matmul_curve)
    prof = base.model_copy(update={
        "matmul_efficiency": min(1.0, eff), "attention_efficiency": att, "bandwidth_efficiency": min(1.0, bw),
        "matmul_curve": curve, "step_overhead_s": base.step_overhead_s * o,
        "per_layer_overhead_s": base.per_layer_overhead_s * o,
        "per_sequence_overhead_s": base.per_sequence_overhead_s * o * q,
        "device_spec": spec if base.device_spec is not None else None,
    })
    return prof, spec


def predict(obs: Sequence[Observation], prof: DeviceProfile,
            device: DeviceSpec) -> np.ndarray[Any, np.dtype[np.float64]]:
    costs: dict[tuple[str, str, str], StepCost] = {}
    out = np.empty(len(obs))
    for i, o in enumerate(obs):
        key = (o.model.name, o.weights, o.kv)
        if key not in costs:
            costs[key] = StepCost(resolve_deployment(o.model, device, weights=o.weights, kv=o.kv, profile=prof))
        out[i] = costs[key].seconds(o.shape)
    return out


@dataclass(frozen=True, slots=True)
class Calibration:
    profile: DeviceProfile
    factors: dict[str, float]
    std_errors: dict[str, float]  # relative (log-space) standard error of each factor
    log_sd: float  # spread of log(predicted/measured) after the fit
    ape_before: list[float]
    ape_after: list[float]
    observations: list[Observation]
    rms_log_before: float = 0.0  # what the fit minimises: it never ends above where it started
    rms_log_after: float = 0.0

    @property
    def median_before(self) -> float:
        return statistics.median(self.ape_before)

    @property
    def median_after(self) -> float:
        return statistics.median(self.ape_after)


def calibrate(obs: Sequence[Observation], base: DeviceProfile, device: DeviceSpec, *,
              fit: Sequence[str] = DEFAULT_FIT) -> Calibration:
    """Least-squares factors for ``fit`` (others stay 1); needs at least as many observations as factors."""
    if len(obs) < len(fit):
        raise InputError(f"calibration needs at least {len(fit)} measured steps, got {len(obs)}")
    measured = np.array([o.seconds for o in obs])
    idx = [FACTORS.index(f) for f in fit]

    def factors_of(x: np.ndarray[Any, np.dtype[np.float64]]) -> list[float]:
        f = [1.0] * len(FACTORS)
        for j, v in zip(idx, x, strict=True):
            f[j] = float(math.exp(v))
        return f

    def residuals(x: np.ndarray[Any, np.dtype[np.float64]]) -> np.ndarray[Any, np.dtype[np.float64]]:
        prof, spec = scaled_profile(base, device, factors_of(x))
        r: np.ndarray[Any, np.dtype[np.float64]] = np.log(predict(obs, prof, spec)) - np.log(measured)
        return r

    before = residuals(np.zeros(len(idx)))
    sol = least_squares(residuals, np.zeros(len(idx)), bounds=(-_BOUND, _BOUND), diff_step=1e-3)
    after = residuals(sol.x)
    dof = max(len(obs) - len(idx), 1)
    s2 = float(after @ after) / dof
    jac = np.asarray(sol.jac)
    cov = np.linalg.pinv(jac.T @ jac) * s2
    se = np.sqrt(np.clip(np.diag(cov), 0, None))
    # a factor no observation is sensitive to (no compute-bound step, or an efficiency at its cap of 1)
    se[np.linalg.norm(jac, axis=0) < 1e-9] = np.inf
    factors = factors_of(sol.x)
    prof, _ = scaled_profile(base, device, factors)
    log_sd = math.sqrt(s2)
    prof = prof.model_copy(update={
        "source": f"calibrated from {len(obs)} measured steps ({', '.join(sorted({o.source for o in obs}))})",
        "uncertainty": dict(base.uncertainty) | {"step_time_log_sd": round(log_sd, 4)}
                       | {f"{name}_factor_rel_se": round(float(e), 4) for name, e in zip(fit, se, strict=True)},
    })

    def ape(r: np.ndarray[Any, np.dtype[np.float64]]) -> list[float]:
        return [float(100 * abs(math.exp(v) - 1)) for v in r]

    return Calibration(prof, dict(zip(FACTORS, factors, strict=True)),
                       {name: float(e) for name, e in zip(fit, se, strict=True)}, log_sd, ape(before), ape(after),
                       list(obs), float(np.sqrt(np.mean(before**2))), float(np.sqrt(np.mean(after**2))))


# ---- observations from files and runs ----------------------------------------------------------------


def from_validate_summary(summary: dict[str, Any], model: str, layers: int | None, run_id: str) -> list[Observation]:
    from inferplan.measure.validate import DTYPE_FORMATS, model_for_validation

    spec, _ = model_for_validation(model, layers)
    weights, kv = DTYPE_FORMATS[str(summary.get("dtype", "fp32"))]
    out = []
    for p in summary["points"]:
        if p["phase"] == "prefill":
            shape = batch_shape([(int(p["tokens"]), int(p["context"]))] * int(p["batch"]))
        else:
            b, c = int(p["batch"]), int(p["context"])
            shape = BatchShape.decodes(b, b * c)
        out.append(Observation(spec, weights, kv, shape, float(p["measured_s"]), f"validate {run_id}"))
    return out


_MD_ROW = re.compile(r"\|\s*(pp|tg)(\d+)(?:\s*@\s*d(\d+))?\s*\|\s*([\d.]+)\s*(?:±\s*[\d.]+)?\s*\|\s*$")


def read_llama_bench(path: Path) -> list[tuple[int, int, int, float]]:
    """(prompt tokens, generated tokens, depth, tokens per second) rows of a llama-bench output file.

    Reads ``-o json`` / ``-o jsonl`` output and the default markdown table (pp512 / tg128 rows).
    """
    try:
        text = path.read_text()
    except OSError as exc:
        raise InputError(f"{path}: cannot read the llama-bench file ({exc.strerror})") from None
    rows: list[tuple[int, int, int, float]] = []
    stripped = text.strip()
    if stripped.startswith(("[", "{")):
        try:
            data = (json.loads(stripped) if stripped.startswith("[")
                    else [json.loads(x) for x in stripped.splitlines() if x.strip()])
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}: not valid llama-bench JSON ({exc.msg} at line {exc.lineno})") from None
        for i, r in enumerate(data):
            try:
                rows.append((int(r["n_prompt"]), int(r["n_gen"]), int(r.get("n_depth", 0)), float(r["avg_ts"])))
            except (KeyError, TypeError, ValueError):
                raise InputError(f"{path}: entry {i} lacks n_prompt, n_gen or avg_ts "
                                 "(use `llama-bench -o json`)") from None
    else:
        for line in text.splitlines():
            m = _MD_ROW.search(line)
            if m:
                n = int(m.group(2))
                depth = int(m.group(3) or 0)
                rows.append((n, 0, depth, float(m.group(4))) if m.group(1) == "pp"
                            else (0, n, depth, float(m.group(4))))
    if not rows:
        raise InputError(f"{path}: no llama-bench results found (expected pp512/tg128 rows or `-o json` output)")
    return rows


def from_llama_bench(path: Path, model: str, weights: str, kv: str = "bf16") -> list[Observation]:
    """Prompt processing of N tokens = one prefill step of N tokens (split in 512-token ubatches);
    generation of N tokens = N decode steps at batch 1, the context growing from the depth."""
    spec = get_model(model)
    get_weight_format(weights)
    out = []
    for n_prompt, n_gen, depth, tps in read_llama_bench(path):
        if tps <= 0:
            continue
        if n_prompt and not n_gen:
            chunks = [(min(512, n_prompt - s), depth + s) for s in range(0, n_prompt, 512)]
            for k, (new, cached) in enumerate(chunks):
                out.append(Observation(spec, weights, kv, batch_shape([(new, cached)],
                                       prefills_completing=int(k == len(chunks) - 1)),
                                       new / tps, f"llama-bench {path.name}"))
        elif n_gen:
            mid = depth + n_prompt + n_gen // 2
            out.append(Observation(spec, weights, kv, BatchShape.decodes(1, mid), 1.0 / tps,
                                   f"llama-bench {path.name}"))
    return out


def base_for(device: str, profile: Path | None) -> tuple[DeviceProfile, DeviceSpec]:
    """The profile to start from and its device: a given file, or the device's defaults / local profile."""
    if profile:
        prof = DeviceProfile.load(profile)
        spec = prof.resolve_device(device) or get_device(device)
    else:
        spec = get_device(device)
        prof = DeviceProfile.default_for(spec)
    return prof, spec


def fitted_latencies(s: Summary) -> np.ndarray[Any, np.dtype[np.float64]]:
    """What a bench calibration matches: TTFT p50 and p90, TPOT p50 and p90, E2E p50 (NaN where missing)."""
    values = [s.ttft_s.p50, s.ttft_s.p90, s.tpot_s.p50, s.tpot_s.p90, s.e2e_s.p50]
    return np.array([np.nan if v is None else v for v in values], dtype=np.float64)


def fit_to_bench(measured: Summary, simulate: Callable[[DeviceProfile], Summary], base: DeviceProfile,
                 device: DeviceSpec, *, fit: Sequence[str] = ("compute", "overhead", "sequence"),
                 ) -> tuple[DeviceProfile, dict[str, float], float, float]:
    """Factors that make a simulation's TTFT, TPOT and E2E percentiles match a bench run's.

    ``simulate(profile)`` runs the bench's workload on the deployment with that profile and
    returns its summary. Returns (profile, factors, error before %, error after %).
    """
    target = fitted_latencies(measured)
    if not np.isfinite(target).all():
        raise InputError("the bench run has no TTFT, TPOT or E2E to calibrate against (did any request finish "
                         "with more than one token?)")
    idx = [FACTORS.index(f) for f in fit]

    def err(x: np.ndarray[Any, np.dtype[np.float64]]) -> np.ndarray[Any, np.dtype[np.float64]]:
        f = [1.0] * len(FACTORS)
        for j, v in zip(idx, x, strict=True):
            f[j] = math.exp(v)
        prof, _ = scaled_profile(base, device, f)
        s = simulate(prof)
        got = fitted_latencies(s)
        r: np.ndarray[Any, np.dtype[np.float64]] = np.log(got) - np.log(target)
        return r

    before = err(np.zeros(len(idx)))
    sol = least_squares(err, np.zeros(len(idx)), bounds=(-_BOUND, _BOUND), diff_step=0.05, max_nfev=60)
    f = [1.0] * len(FACTORS)
    for j, v in zip(idx, sol.x, strict=True):
        f[j] = math.exp(v)
    prof, _ = scaled_profile(base, device, f)
    after = sol.fun
    sd = float(np.sqrt(np.mean(after**2)))
    prof = prof.model_copy(update={"source": "calibrated to a bench run through the simulator",
                                   "uncertainty": dict(base.uncertainty) | {"step_time_log_sd": round(sd, 4)}})
    med = statistics.median
    return (prof, dict(zip(FACTORS, f, strict=True)), float(med(100 * abs(math.exp(v) - 1) for v in before)),
            float(med(100 * abs(math.exp(v) - 1) for v in after)))
