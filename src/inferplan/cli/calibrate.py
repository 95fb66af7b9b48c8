"""CLI verb `calibrate`: fit a device profile to measured steps (validate runs, llama-bench) or a bench run."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from inferplan.api import InputError
from inferplan.cli import options
from inferplan.cli.app import app
from inferplan.cli.output import emit_json, out, print_table

if TYPE_CHECKING:
    from inferplan.api import Calibration, DeviceProfile, DeviceSpec, RunRecord


CALIBRATE_EPILOG = (
    "Examples:\n\n  inferplan calibrate --from validate-20261125-101500-ab12cd\n\n"
    "  inferplan calibrate --from BENCH_RUN --model ./tiny/config.json --device local --weights fp32 --kv fp32\n\n"
    "  inferplan calibrate --llama-bench results.json --model llama-3.1-8b --weights q4_k_m --device rtx-4090 "
    "--out rtx4090.yaml"
)


@app.command("calibrate", epilog=CALIBRATE_EPILOG)
def calibrate_cmd(
    runs: Annotated[list[str] | None, typer.Option("--from", help="validate or bench run id (repeatable)")] = None,
    llama_bench: Annotated[list[Path] | None, typer.Option(help="llama-bench output file (JSON or markdown)")] = None,
    model: Annotated[str | None, typer.Option(help="model of the llama-bench file or bench run")] = None,
    weights: Annotated[str, typer.Option(help="weight format of the llama-bench file or bench run")] = "bf16",
    kv: Annotated[str, typer.Option(help="KV format of the bench run")] = "bf16",
    device: Annotated[str, typer.Option(help="device the measurements come from")] = "local",
    policy: Annotated[str, typer.Option(help="bench run: the server's scheduling policy")] = "vllm",
    profile: Annotated[Path | None, typer.Option(help="profile to start from (default: device defaults or "
                                                 "the local profile)")] = None,
    fit: Annotated[str | None, typer.Option(help="factors to fit: compute, bandwidth, overhead, sequence "
                                                "(default: the first three; a bench run: compute, overhead, "
                                                "sequence)")] = None,
    out_file: Annotated[Path | None, typer.Option("--out", help="calibrated profile to write (default: "
                                                  "replace the local profile, for --device local)")] = None,
    registry: options.RegistryPath = None,
    as_json: options.Json = False,
) -> None:
    """Fit a device profile's compute, bandwidth and overhead factors to measured runs; with uncertainty."""
    from inferplan.api import (
        DEFAULT_FIT,
        FACTORS,
        Registry,
        base_for,
        calibrate,
        from_llama_bench,
        from_validate_summary,
        local_profile_path,
    )

    factors = tuple(f.strip() for f in fit.split(",") if f.strip()) if fit else DEFAULT_FIT
    if not factors or any(f not in FACTORS for f in factors):
        raise InputError(f"--fit: choose from {', '.join(FACTORS)} (comma-separated), got {fit!r}")
    if not runs and not llama_bench:
        raise InputError("nothing to calibrate from: pass --from RUN_ID (validate or bench) or --llama-bench FILE")
    base, spec = base_for(device, profile)
    reg = Registry(registry)
    obs = []
    bench_runs = []
    for run_id in runs or []:
        rec = reg.get(run_id)
        if rec.kind == "validate":
            obs += from_validate_summary(rec.summary, rec.inputs["model"], rec.inputs.get("layers"), rec.id)
        elif rec.kind == "bench":
            bench_runs.append(rec)
        else:
            raise InputError(f"run {rec.id} is a {rec.kind} run; calibrate reads validate and bench runs")
    for path in llama_bench or []:
        if not model:
            raise InputError("--llama-bench needs --model (and --weights) naming what was benchmarked")
        obs += from_llama_bench(path, model, weights)
    target = out_file or (local_profile_path() if device == "local" else Path(f"{spec.name}-calibrated.yaml"))
    if bench_runs:
        _calibrate_bench(bench_runs, model, weights, kv, device, policy, base, spec, target, as_json,
                         factors if fit else None)
        return
    factors, note = _factors_for(factors, fit, len(obs), bool(llama_bench))
    cal = calibrate(obs, base, spec, fit=factors)
    cal.profile.dump(target)
    _print_calibration(cal, spec.name, len(obs), factors, note, target, as_json)


def _print_calibration(cal: Calibration, device: str, num_steps: int, factors: tuple[str, ...], note: str,
                       target: Path, as_json: bool) -> None:
    """The fitted factors with their spread, the error before and after, and where the profile went."""
    from rich.table import Table

    undetermined = [name for name, se in cal.std_errors.items() if not math.isfinite(se)]
    if as_json:
        emit_json({"factors": cal.factors, "fitted": list(factors), "note": note, "undetermined": undetermined,
                   "std_errors": {k: (v if math.isfinite(v) else None) for k, v in cal.std_errors.items()},
                   "step_time_log_sd": cal.log_sd,
                   "median_ape_before_pct": cal.median_before, "median_ape_after_pct": cal.median_after,
                   "rms_log_error_before": cal.rms_log_before, "rms_log_error_after": cal.rms_log_after,
                   "observations": len(cal.observations), "profile": str(target)})
        return
    t = Table(title=f"calibration of {device} from {num_steps} measured steps")
    for col in ("factor", "value", "± (1 s.e.)"):
        t.add_column(col, justify="left" if col == "factor" else "right")
    for name, value in cal.factors.items():
        se = cal.std_errors.get(name)
        spread = "not fitted" if se is None else f"{100 * se:.1f}%" if math.isfinite(se) else "not determined"
        t.add_row(name, f"{value:.3f}", spread)
    print_table(t)
    if note:
        out.print(f"note: {note}", soft_wrap=True)
    if undetermined:
        out.print(f"note: the spread of {', '.join(undetermined)} is not determined: no measured step is sensitive to "
                  "it at the fitted value (it has no effect there, or it reached its limit, such as an efficiency "
                  "of 100% of peak); add steps of that kind to pin it down", soft_wrap=True)
    out.print(f"median absolute error: {cal.median_before:.1f}% before, {cal.median_after:.1f}% after; "
              f"remaining spread of step times: ±{100 * (math.exp(cal.log_sd) - 1):.1f}% (1 s.d.)")
    out.print(f"profile: {target}")


def _factors_for(factors: tuple[str, ...], asked: str | None, n_obs: int,
                 llama_bench: bool) -> tuple[tuple[str, ...], str]:
    """The factors to fit and a note: a standard llama-bench file (pp512 and tg128: two measured steps)
    determines compute and bandwidth; asking for more factors than steps is an error saying what to add."""
    if n_obs >= len(factors):
        return factors, ""
    fix = ("run llama-bench with more prompt and generation sizes, e.g. `llama-bench -p 64,512 -n 16,128 -o json`"
           if llama_bench else "add more measured runs (--from)")
    if asked or n_obs < 1:
        raise InputError(f"fitting {', '.join(factors)} needs at least {len(factors)} measured steps, got {n_obs}; "
                         f"{fix}, or fit fewer factors (--fit compute,bandwidth)")
    kept = factors[:n_obs]
    return kept, (f"{n_obs} measured steps determine {n_obs} factors: fitted {', '.join(kept)}; "
                  f"{', '.join(factors[n_obs:])} kept at the starting profile's value ({fix} to fit them too)")


def _calibrate_bench(bench_runs: list[RunRecord], model: str | None, weights: str, kv: str, device: str, policy: str,
                     base: DeviceProfile, spec: DeviceSpec, target: Path, as_json: bool,
                     fit: tuple[str, ...] | None) -> None:
    """Fit through the simulator: replay each bench run's requests.csv with candidate profiles."""
    from inferplan.api import SimulationConfig, Summary, fit_to_bench, simulate_config

    if len(bench_runs) != 1 or not model:
        raise InputError("calibrating from a bench run needs exactly one --from BENCH_RUN and --model "
                         "(the served model's catalog name or config.json)")
    rec = bench_runs[0]
    trace = Path(rec.out_dir or "") / "requests.csv"
    if not trace.exists():
        raise InputError(f"run {rec.id}: {trace} is missing; was the folder moved?")
    measured = Summary.from_json(rec.summary, f"run {rec.id}")
    tmp = target.with_suffix(".candidate.yaml")

    def simulate(prof: DeviceProfile) -> Summary:
        prof.dump(tmp)
        cfg = SimulationConfig(model=model, device=device, weights=weights, kv=kv, policy=policy,
                               workload=str(trace), profile=str(tmp))
        return simulate_config(cfg)[1]

    try:
        if fit:
            prof, factors, before, after = fit_to_bench(measured, simulate, base, spec, fit=fit)
        else:
            prof, factors, before, after = fit_to_bench(measured, simulate, base, spec)
    finally:
        tmp.unlink(missing_ok=True)
    prof.dump(target)
    if as_json:
        emit_json({"factors": factors, "median_error_before_pct": before, "median_error_after_pct": after,
                   "profile": str(target)})
        return
    out.print("factors: " + ", ".join(f"{k} x{v:.3f}" for k, v in factors.items()))
    out.print(f"median error of TTFT p50/p90, TPOT p50/p90 and E2E p50: {before:.1f}% before, {after:.1f}% after")
    out.print(f"profile: {target}")
