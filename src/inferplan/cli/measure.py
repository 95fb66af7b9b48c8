"""CLI verbs that meet reality: `bench`, `compare` (and `profile`, `validate`, `calibrate`)."""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from inferplan.cli import options
from inferplan.cli.app import app
from inferplan.cli.output import (
    EXIT_INTERRUPTED, ProgressReport, check_out_dir, emit_json, interrupted, out, print_table,
)
from inferplan.cli.render import print_comparison, print_summary
from inferplan.errors import InputError

if TYPE_CHECKING:
    from inferplan.measure.bench import RequestRecord
    from inferplan.perf.profile import DeviceProfile
    from inferplan.specs.hardware import DeviceSpec
    from inferplan.store import RunRecord

BENCH_EPILOG = (
    "Examples:\n\n"
    "  inferplan bench http://127.0.0.1:8000/v1 --model meta-llama/Llama-3.1-8B-Instruct --workload chat "
    "--rate 2 --duration 120\n\n"
    "  inferplan bench http://127.0.0.1:8000/v1 --workload ../shared/data/traces/azure_llm_2023_code.csv "
    "--num-requests 200 --rate-scale 0.5\n\n"
    "  inferplan bench http://127.0.0.1:8080/v1 --api chat --workload code --concurrency 4 --closed-loop "
    "--num-requests 50 --max-output-tokens 128"
)
COMPARE_EPILOG = (
    "Examples:\n\n  inferplan compare bench-20261125-101500-ab12cd sim-20261125-101730-ef34gh\n\n"
    "  inferplan compare BENCH_RUN SIM_RUN --json"
)


@app.command("bench", epilog=BENCH_EPILOG)
def bench_cmd(
    url: Annotated[str, typer.Argument(help="API base of an OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1")],
    model: Annotated[str, typer.Option(help="model name the server knows (default: its first listed model)")] = "",
    api: Annotated[str, typer.Option(help="completions (/v1/completions) or chat (/v1/chat/completions)")] = "completions",
    workload: options.Workload = "chat",
    rate: options.Rate = None,
    rate_scale: options.RateScale = None,
    duration: options.Duration = None,
    num_requests: options.NumRequests = None,
    seed: options.Seed = 0,
    max_input_tokens: Annotated[int | None, typer.Option(help="cap prompt lengths (small local models)")] = None,
    max_output_tokens: Annotated[int | None, typer.Option(help="cap output lengths")] = None,
    concurrency: Annotated[int | None, typer.Option(help="at most this many requests in flight")] = None,
    closed_loop: Annotated[bool, typer.Option("--closed-loop", help="ignore arrival times: send the next "
                                               "request as soon as a --concurrency slot frees")] = False,
    timeout: Annotated[float, typer.Option(help="seconds before a request counts as timed out")] = 120.0,
    ignore_eos: Annotated[str, typer.Option(help="auto (use it if the server accepts it), on, off")] = "auto",
    api_key_env: Annotated[str | None, typer.Option(help="environment variable holding a bearer token")] = None,
    slo: Annotated[str | None, typer.Option(help="e.g. ttft_p90=1s,tpot_p90=50ms")] = None,
    trace_format: options.TraceFormat = None,
    skip_bad_rows: options.SkipBadRows = False,
    out_dir: options.OutDir = Path("inferplan-runs"),
    registry: options.RegistryPath = None,
    as_json: options.Json = False,
) -> None:
    """Replay a workload against a live endpoint; record every request like `simulate` does."""
    from inferplan.runs import BenchConfig, run_bench
    from inferplan.store import Registry

    if api not in ("completions", "chat"):
        raise InputError(f"--api must be 'completions' or 'chat', got {api!r}")
    eos = {"auto": None, "on": True, "off": False}
    if ignore_eos not in eos:
        raise InputError(f"--ignore-eos must be auto, on or off, got {ignore_eos!r}")
    if closed_loop and not concurrency:
        raise InputError("--closed-loop needs --concurrency N (how many requests to keep in flight)")
    if not timeout > 0:
        raise InputError(f"--timeout must be positive, got {timeout:g}")
    cfg = BenchConfig(url=url, model=model, api=api, workload=workload, rate=rate,  # type: ignore[arg-type]
                      rate_scale=rate_scale, duration_s=duration, num_requests=num_requests, seed=seed,
                      trace_format=trace_format, skip_bad_rows=skip_bad_rows, max_input_tokens=max_input_tokens,
                      max_output_tokens=max_output_tokens, concurrency=concurrency, honour_arrivals=not closed_loop,
                      timeout_s=timeout, ignore_eos=eos[ignore_eos], api_key_env=api_key_env, slo=slo)
    folder = check_out_dir(out_dir)
    reg = Registry(registry)
    with ProgressReport("benchmarking", quiet=as_json, unit="requests") as bar:
        counts = {"done": 0, "failed": 0, "total": 0}

        def start(n: int) -> None:
            counts["total"] = n
            bar.update(0, n)

        def done(rec: RequestRecord) -> None:
            counts["done"] += 1
            counts["failed"] += rec.status != "finished"
            bar.update(counts["done"], counts["total"])

        run = run_bench(cfg, out_dir=folder, registry=reg, on_start=start, on_done=done)
    if as_json:
        emit_json(run.summary | {"run_id": run.run_id, "out_dir": str(run.out_dir), "report": str(run.report_path),
                                 "registry": str(reg.path)})
    else:
        for note in run.notes:
            out.print(f"note: {note}")
        print_summary(run.summary, title=f"{run.summary['model']} at {run.summary['endpoint']}")
        out.print(f"run {run.run_id} recorded in {reg.path}; outputs in {run.out_dir}", soft_wrap=True)
        out.print(f"report: {run.report_path}", soft_wrap=True)
    if run.interrupted:
        kept = sum(r.status == "finished" for r in run.records)
        sys.stderr.write(f"interrupted: kept {kept} finished of {len(run.records)} requests in {run.out_dir} "
                         f"(run {run.run_id}); the rest are recorded as failed\n")
        raise typer.Exit(EXIT_INTERRUPTED)


@app.command("compare", epilog=COMPARE_EPILOG)
def compare_cmd(
    reference: Annotated[str, typer.Argument(help="the reference run, usually a bench run (measured)")],
    other: Annotated[str, typer.Argument(help="the run to check against it, usually a simulation")],
    registry: Annotated[Path | None, typer.Option(help="run registry SQLite file")] = None,
    out_dir: options.OutDir = Path("inferplan-runs"),
    as_json: options.Json = False,
) -> None:
    """Metric by metric: OTHER against REFERENCE, with the error in percent, and overlaid CDFs in a report."""
    from inferplan.cli.runs import compared
    from inferplan.report.compare import headline_error, write_compare_report

    folder = check_out_dir(out_dir)
    a, b, rows = compared(registry, reference, other)
    report = write_compare_report(folder / f"compare-{a.id}-vs-{b.id}.html", a, b, rows)
    if as_json:
        emit_json({"reference": a.id, "other": b.id, "metrics": rows, "report": str(report)})
        return
    print_comparison(rows, f"reference = {a.id} ({a.kind})   other = {b.id} ({b.kind})",
                     ("reference", "other", "other - ref", "error"))
    mape = headline_error(rows)
    if mape is not None:
        out.print(f"median absolute error over TTFT, TPOT and E2E (p50, p90) and output throughput: {mape:.1f}%")
    out.print(f"report: {report}")


PROFILE_EPILOG = (
    "Examples:\n\n  inferplan profile\n\n  inferplan profile --out my-laptop.yaml\n\n"
    "  inferplan fit llama-3.2-1b local --weights fp32\n\n  inferplan simulate llama-3.2-1b --device local --weights fp32 "
    "--kv fp32 --workload chat --rate 0.2 --duration 60"
)
VALIDATE_EPILOG = (
    "Examples:\n\n  inferplan validate llama-3.2-1b --device local\n\n"
    "  inferplan validate qwen2.5-7b --layers 2 --json\n\n  inferplan validate ./my-model/config.json --checkpoint ./my-model"
)




@app.command("profile", epilog=PROFILE_EPILOG)
def profile_cmd(
    out_file: Annotated[Path | None, typer.Option("--out", help="profile file to write (default: this user's "
                                                  "data folder, where `--device local` finds it)")] = None,
    quick: Annotated[bool, typer.Option("--quick", help="a smaller sweep (~15 s), for a first look")] = False,
    as_json: options.Json = False,
) -> None:
    """Microbenchmark this machine (matmul, memory bandwidth, attention, framework overhead) into a device profile."""
    from rich.table import Table

    from inferplan.measure.microbench import fit_profile, implausible, measure
    from inferplan.specs.catalog import local_profile_path

    path = out_file or local_profile_path()
    with interrupted(lambda: "profiling stopped before it finished; no profile was written"), \
            ProgressReport("profiling", quiet=as_json, counted=False) as bar:
        res = measure(lambda what, frac: bar.say(f"{what} ({frac:.0%})"), quick=quick)
    prof = fit_profile(res)
    warnings = implausible(prof)
    prof.dump(path)
    spec = prof.device_spec
    assert spec is not None
    if as_json:
        emit_json(prof.model_dump(mode="json", exclude={"measurements"}) | {"path": str(path), "warnings": warnings})
        return
    t = Table(title=f"{spec.display_name}: measured")
    t.add_column("quantity")
    t.add_column("value", justify="right")
    for name, value in (
        ("fp32 matmul peak", f"{spec.peak_tflops['fp32'] * 1e3:,.1f} GFLOP/s"),
        ("bf16 matmul peak", f"{spec.peak_tflops['bf16'] * 1e3:,.1f} GFLOP/s"),
        ("streaming read", f"{spec.memory_bw_gb_s:,.1f} GB/s"),
        ("matrix-vector share of it", f"{prof.bandwidth_efficiency:.0%}"),
        ("matmul efficiency at 1 / 16 / 256 rows",
         " / ".join(f"{e:.0%}" for r, e in prof.matmul_curve if r in (1, 16, 256))),
        ("attention (share of fp32 peak)", f"{prof.attention_efficiency:.0%}"),
        ("eager PyTorch: per step / per layer / per sequence",
         f"{prof.step_overhead_s * 1e3:.2f} / {prof.per_layer_overhead_s * 1e3:.2f} / "
         f"{prof.per_sequence_overhead_s * 1e3:.3f} ms"),
        ("memory", f"{spec.memory_gib:,.1f} GiB"),
    ):
        t.add_row(name, value)
    print_table(t)
    for warning in warnings:
        out.print(f"[yellow]warning[/]: {warning}", soft_wrap=True)
    out.print(f"profile: {path}")
    out.print("use it with `--device local` (fit, simulate, plan, validate), or `--profile FILE`")

@app.command("validate", epilog=VALIDATE_EPILOG)
def validate_cmd(
    model: Annotated[str, typer.Argument(help="catalog name or config.json path")] = "llama-3.2-1b",
    device: Annotated[str, typer.Option(help="the device the prediction is for; `local` = the profiled machine")] = "local",
    profile: Annotated[Path | None, typer.Option(help="profile file (default: the one `inferplan profile` wrote)")] = None,
    layers: Annotated[int | None, typer.Option(help="keep only the first N layers (same shapes, faster)")] = None,
    dtype: Annotated[str, typer.Option(help="fp32 or bf16")] = "fp32",
    batches: Annotated[str, typer.Option(help="decode batch sizes")] = "1,4,16",
    contexts: Annotated[str, typer.Option(help="decode context lengths")] = "128,1024",
    prompts: Annotated[str, typer.Option(help="prefill prompt lengths")] = "32,128,512",
    checkpoint: Annotated[Path | None, typer.Option(help="a local checkpoint folder (real weights)")] = None,
    out_dir: options.OutDir = Path("inferplan-runs"),
    registry: options.RegistryPath = None,
    as_json: options.Json = False,
) -> None:
    """Time real model steps on this machine against the predicted times; print the error per point."""
    from rich.table import Table

    from inferplan.perf.profile import DeviceProfile
    from inferplan.runs import run_validate
    from inferplan.store import Registry

    prof = DeviceProfile.load(profile) if profile else None
    folder = check_out_dir(out_dir)
    with interrupted(lambda: "validation stopped before it finished; nothing was recorded"), \
            ProgressReport("timing", quiet=as_json, counted=False) as bar:
        run = run_validate(model, device=device, profile=prof, layers=layers, dtype=dtype,
                           batches=_ints(batches, "--batches"), contexts=_ints(contexts, "--contexts"),
                           prompts=_ints(prompts, "--prompts"), checkpoint=checkpoint, out_dir=folder,
                           registry=Registry(registry),
                           progress=lambda what, frac: bar.say(f"{what} ({frac:.0%})"))
    res = run.result
    if as_json:
        emit_json(run.summary | {"run_id": run.run_id, "out_dir": str(run.out_dir)})
        return
    t = Table(title=f"{res.model} on {res.device} ({res.dtype}); profile: {res.profile_source}")
    for col in ("step", "batch", "tokens", "context", "measured ms", "predicted ms", "error"):
        t.add_column(col, justify="left" if col == "step" else "right")
    for p in res.points:
        t.add_row(p.phase, str(p.batch), str(p.tokens), str(p.context), f"{p.measured_s * 1e3:,.2f}",
                  f"{p.predicted_s * 1e3:,.2f}", f"{p.ape_pct:.1f}%")
    print_table(t)
    out.print(f"median absolute percentage error: {res.median_ape_pct:.1f}% over {len(res.points)} points")
    if res.speed_vs_profile is not None:
        out.print(f"this machine ran the profile's reference matmul at {res.speed_vs_profile:.0%} of its profiled "
                  "speed during the run" + ("" if 0.9 <= res.speed_vs_profile <= 1.1 else
                                             " - it has drifted; profile again for a fair comparison"))
    out.print(f"run {run.run_id}; outputs in {run.out_dir}")


def _ints(text: str, flag: str) -> tuple[int, ...]:
    try:
        values = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise InputError(f"{flag}: expected comma-separated whole numbers like 1,4,16, got {text!r}") from None
    if not values or min(values) < 1:
        raise InputError(f"{flag}: expected positive whole numbers, got {text!r}")
    return values


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
    from inferplan.measure.calibrate import (
        DEFAULT_FIT, FACTORS, base_for, calibrate, from_llama_bench, from_validate_summary,
    )
    from rich.table import Table

    from inferplan.specs.catalog import local_profile_path
    from inferplan.store import Registry

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
    undetermined = [name for name, se in cal.std_errors.items() if not math.isfinite(se)]
    if as_json:
        emit_json({"factors": cal.factors, "fitted": list(factors), "note": note, "undetermined": undetermined,
                   "std_errors": {k: (v if math.isfinite(v) else None) for k, v in cal.std_errors.items()},
                   "step_time_log_sd": cal.log_sd,
                   "median_ape_before_pct": cal.median_before, "median_ape_after_pct": cal.median_after,
                   "rms_log_error_before": cal.rms_log_before, "rms_log_error_after": cal.rms_log_after,
                   "observations": len(cal.observations), "profile": str(target)})
        return
    t = Table(title=f"calibration of {spec.name} from {len(obs)} measured steps")
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


def _factors_for(factors: tuple[str, ...], asked: str | None, n_obs: int, llama_bench: bool) -> tuple[tuple[str, ...], str]:
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
    from inferplan.measure.calibrate import fit_to_bench
    from inferplan.runs import SimulationConfig, simulate_config

    if len(bench_runs) != 1 or not model:
        raise InputError("calibrating from a bench run needs exactly one --from BENCH_RUN and --model "
                         "(the served model's catalog name or config.json)")
    rec = bench_runs[0]
    trace = Path(rec.out_dir or "") / "requests.csv"
    if not trace.exists():
        raise InputError(f"run {rec.id}: {trace} is missing; was the folder moved?")
    tmp = target.with_suffix(".candidate.yaml")

    def simulate(prof: DeviceProfile) -> dict[str, Any]:
        prof.dump(tmp)
        cfg = SimulationConfig(model=model, device=device, weights=weights, kv=kv, policy=policy,
                               workload=str(trace), profile=str(tmp))
        return simulate_config(cfg)[1]

    try:
        if fit:
            prof, factors, before, after = fit_to_bench(rec.summary, simulate, base, spec, fit=fit)
        else:
            prof, factors, before, after = fit_to_bench(rec.summary, simulate, base, spec)
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
