"""`inferplan accuracy`: the replay's report, and with ``--fit`` the shipped profiles refitted by mechanism.

What is fitted, and to what:

* datacenter GPUs' large-matmul and memory-bandwidth efficiency and TensorRT-LLM's per-sequence host
  time, to TensorRT-LLM v0.17's offline throughput rows of every GPU but the held-out ones
  (``HOLDOUT_DEVICES``), by least squares on log(predicted / measured) with a soft-L1 loss so a few
  rows the model cannot explain do not drag the rest; the efficiencies are the device's, so the
  vLLM and SGLang entries share them;
* NCCL's all-reduce latency and bus bandwidth, to Vidur's network profiles (``collectives_fit``),
  when ``--measurements`` has them;
* llama.cpp's kernel efficiencies and step time per device kind, to the llama-bench table
  (``llamacpp_fit``), when ``--measurements`` has it.

Nothing is fitted per row, model or sequence length.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import yaml

from inferplan.fileio import write_text_atomic
from inferplan.measure.accuracy import (
    HOLDOUT_DEVICES,
    Case,
    ErrorGroup,
    all_cases,
    data_file,
    error_groups,
    offline_cases,
    residual_quantiles,
)
from inferplan.measure.collectives_fit import collectives_yaml, fit_nccl, read_allreduce_points
from inferplan.measure.llamacpp_cases import XIONGJIEDAI_FILE, memory_verdicts, read_bench_rows
from inferplan.measure.llamacpp_fit import KINDS, KindFit, fit_kind
from inferplan.measure.llamacpp_fit import profile_fields as llamacpp_fields
from inferplan.perf.deployment import Deployment
from inferplan.perf.profile import DeviceProfile
from inferplan.specs.catalog import catalog_path

# 16-bit matmuls (the A100 rows, FP16), FP8 matmuls (the others), HBM streaming, host time per sequence
FITTED = ("matmul_efficiency", "fp8_matmul_efficiency", "bandwidth_efficiency", "per_sequence_overhead_s")
_START = (0.7, 0.6, 0.75, 3e-6)
_BOUNDS = ((0.3, 0.3, 0.5, 0.0), (1.0, 1.0, 1.0, 1e-4))
_SCALE = np.array([1.0, 1.0, 1.0, 1e-5])  # the solver works on numbers of one size


@dataclass(frozen=True, slots=True)
class ProfileFit:
    values: dict[str, float]
    rows: int
    median_error_pct: float
    evaluations: int


def fit_datacenter_profile(progress: Callable[[str], None] | None = None) -> ProfileFit:
    """Least squares over the offline rows that are not held out (a few minutes: every evaluation
    replays them all)."""
    from scipy.optimize import least_squares  # noqa: PLC0415  (an optional speed-up of the planner's own dependency)

    say = progress or (lambda _msg: None)
    calls = [0]

    def residuals(scaled: np.ndarray) -> np.ndarray:
        values = dict(zip(FITTED, (scaled * _SCALE).tolist(), strict=True))
        calls[0] += 1
        cases = list(offline_cases(data_file("trtllm_perf_overview_v0.17_throughput.csv"), _override(values),
                                   fit_rows_only=True))
        errs = np.log([c.predicted / c.measured for c in cases])
        say(f"fit evaluation {calls[0]}: median error {100 * np.median(np.abs(np.expm1(errs))):.1f}% "
            f"at {', '.join(f'{k}={v:.4g}' for k, v in values.items())}")
        return errs

    lo, hi = (np.array(b) / _SCALE for b in _BOUNDS)
    sol = least_squares(residuals, np.array(_START) / _SCALE, bounds=(lo, hi), loss="soft_l1", f_scale=0.1,
                        diff_step=0.02, max_nfev=25)
    values = {k: float(f"{v:.3g}") for k, v in zip(FITTED, sol.x * _SCALE, strict=True)}
    final = np.abs(np.expm1(sol.fun))
    return ProfileFit(values, len(final), round(float(np.median(final)) * 100, 1), calls[0])


def _override(values: dict[str, float]) -> Callable[[Deployment], DeviceProfile]:
    return lambda dep: dep.device_profile.model_copy(update=profile_fields(values))


def profile_fields(values: dict[str, float]) -> dict[str, object]:
    """The fitted numbers as DeviceProfile fields (the FP8 efficiency is an entry of matmul_efficiency_by_dtype)."""
    fields: dict[str, object] = {k: v for k, v in values.items() if k != "fp8_matmul_efficiency"}
    if "fp8_matmul_efficiency" in values:
        fields["matmul_efficiency_by_dtype"] = {"fp8": values["fp8_matmul_efficiency"]}
    return fields


def datacenter_entries(fit: ProfileFit) -> dict[str, dict[str, object]]:
    """The fitted efficiencies for datacenter GPUs under every GPU engine, and the fitted per-sequence host
    time for TensorRT-LLM (vLLM and SGLang keep their priors: no offline rows)."""
    source = (f"fitted by `inferplan accuracy --fit` to {fit.rows} TensorRT-LLM v0.17 offline throughput rows "
              f"(median error {fit.median_error_pct}%; {', '.join(HOLDOUT_DEVICES)} held out)")
    def efficiencies() -> dict[str, object]:  # a fresh copy per entry: the file repeats it, no YAML aliases
        return {k: v for k, v in profile_fields(fit.values).items() if "efficiency" in k}

    priors = source + "; host overheads: the engine's priors"
    return {"datacenter-gpu/trtllm": profile_fields(fit.values) | {"source": source},
            "datacenter-gpu/vllm": efficiencies() | {"source": priors},
            "datacenter-gpu/sglang": efficiencies() | {"source": priors}}


def llamacpp_entries(fits: list[KindFit]) -> dict[str, dict[str, object]]:
    return {f"{f.kind}/llamacpp": llamacpp_fields(f.values) | {
        "source": f"fitted by `inferplan accuracy --fit` to {f.rows} llama-bench figures (XiongjieDai, May 2024; "
                  f"median error {f.median_error_pct}%; {', '.join(HOLDOUT_DEVICES)} held out)"} for f in fits}


def write_profiles(entries: dict[str, dict[str, object]]) -> str:
    """catalog/profiles.yaml with ``entries`` replaced; entries a refit did not touch are kept."""
    current = dict(yaml.safe_load(catalog_path("profiles.yaml").read_text()).get("profiles", {}))
    body = {"profiles": current | entries}
    text = ("# Shipped device profiles by '<device kind>/<engine>', fitted to public measurements by\n"
            "# `inferplan accuracy --fit`; do not edit by hand. Keys absent here keep catalog/engines.yaml's\n"
            "# host overheads and perf/profile.py's kind defaults.\n"
            + yaml.safe_dump(body, sort_keys=False, width=110))
    path = catalog_path("profiles.yaml")
    write_text_atomic(path, text)
    return str(path)


@dataclass(frozen=True, slots=True)
class MemoryCheck:
    """The memory verdict against what ran: configurations that ran must be predicted to fit."""

    ran: int
    ran_predicted_fit: int
    oom: int
    oom_predicted_oom: int
    misses: tuple[str, ...]  # ran, yet predicted not to fit

    def to_json(self) -> dict[str, object]:
        return {f: getattr(self, f) for f in self.__slots__}


@dataclass(frozen=True, slots=True)
class AccuracyRun:
    groups: list[ErrorGroup]
    report_path: Path
    fitted: tuple[str, ...]  # what --fit rewrote, in words
    memory: MemoryCheck | None = None  # with llama-bench results in --measurements


def run_accuracy(out_dir: Path, *, measurements: Path | None = None, refit: bool = False, residuals: bool = False,
                 progress: Callable[[str], None] | None = None) -> AccuracyRun:
    """Refit (optionally), replay every carried measurement, and write the groups to ``accuracy.json``.
    ``residuals``: rewrite the residuals (the ranges predictions carry) from this replay, the profiles kept:
    after a change of mechanism that the fitted numbers do not depend on (a scheduler rule)."""
    say = progress or (lambda _msg: None)
    fitted: list[str] = []
    if refit:
        if measurements is not None:
            fits = fit_nccl(read_allreduce_points(measurements / "vidur" / "profiling" / "network"))
            if fits:
                write_text_atomic(catalog_path("collectives.yaml"), collectives_yaml(fits))
                fitted.append(f"{catalog_path('collectives.yaml')}: {len(fits)} NCCL fits")
        result = fit_datacenter_profile(say)
        fitted.append(f"{write_profiles(datacenter_entries(result))}: {result.values} (median error "
                      f"{result.median_error_pct}% over {result.rows} rows)")
        if measurements is not None and (measurements / XIONGJIEDAI_FILE).exists():
            kinds = [fit_kind(kind, partial(read_bench_rows, measurements), say) for kind in KINDS]
            fitted.append(f"{write_profiles(llamacpp_entries(kinds))}: llama.cpp on "
                          + ", ".join(f"{f.kind} ({f.median_error_pct}% over {f.rows} figures)" for f in kinds))
        _clear_catalog_caches()
    cases = all_cases(measurements, progress=say)
    if refit or residuals:  # the spread of the (refitted) profiles' errors: the ranges every prediction carries
        fitted.append(write_residuals(cases))
    groups = error_groups(cases)
    memory = memory_check(measurements)
    report = out_dir / "accuracy.json"
    body = {"groups": [g.to_json() for g in groups], "memory": memory.to_json() if memory else None}
    write_text_atomic(report, json.dumps(body, indent=2) + "\n")
    return AccuracyRun(groups, report, tuple(fitted), memory)


def memory_check(measurements: Path | None) -> MemoryCheck | None:
    if measurements is None or not (measurements / XIONGJIEDAI_FILE).exists():
        return None
    verdicts = list(memory_verdicts(read_bench_rows(measurements)))
    ran = [v for v in verdicts if v.ran]
    oom = [v for v in verdicts if not v.ran]
    return MemoryCheck(len(ran), sum(v.predicted_fits for v in ran), len(oom),
                       sum(not v.predicted_fits for v in oom), tuple(v.label for v in ran if not v.predicted_fits))


def write_residuals(cases: list[Case]) -> str:
    """catalog/residuals.yaml: the signed-error quantiles per device kind and phase (perf/ranges.py)."""
    table = residual_quantiles(cases)
    used = sum(int(p["count"]) for phases in table.values() for p in phases.values())  # type: ignore[call-overload]
    body = {"source": f"`inferplan accuracy --fit`: signed errors of {used} replayed public measurements "
                      "(measure/data/README.md), predicted / measured - 1", "residuals": table}
    text = ("# Calibration residuals by device kind and phase; do not edit by hand (`inferplan accuracy --fit`).\n"
            + yaml.safe_dump(body, sort_keys=False, width=110, default_flow_style=None))
    path = catalog_path("residuals.yaml")
    write_text_atomic(path, text)
    _clear_catalog_caches()
    return f"{path}: residuals of {sum(len(p) for p in table.values())} device-kind phases"


def _clear_catalog_caches() -> None:
    """Whatever runs after a refit (the replay, an API caller's next prediction) reads the files just written."""
    from inferplan.perf.collectives import nccl_fits  # noqa: PLC0415
    from inferplan.perf.ranges import clear_cache  # noqa: PLC0415
    from inferplan.specs.catalog import fitted_profiles  # noqa: PLC0415

    nccl_fits.cache_clear()
    fitted_profiles.cache_clear()
    clear_cache()
