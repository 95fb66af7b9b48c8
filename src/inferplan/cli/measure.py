"""CLI verbs that meet reality: `bench`, `compare`, `profile`, `validate` (`calibrate` has its own module)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from inferplan.api import InputError
from inferplan.cli import options
from inferplan.cli.app import app
from inferplan.cli.output import (
    EXIT_INTERRUPTED,
    ProgressReport,
    check_out_dir,
    emit_json,
    interrupted,
    out,
    print_table,
)
from inferplan.cli.render import print_comparison, print_summary

if TYPE_CHECKING:
    from inferplan.api import RequestRecord

BENCH_EPILOG = (
    "Examples:\n\n"
    "  inferplan bench http://127.0.0.1:8000/v1 --model meta-llama/Llama-3.1-8B-Instruct --workload chat "
    "--rate 2 --duration 120\n\n"
    "  inferplan bench http://127.0.0.1:8000/v1 --workload ../shared/data/traces/azure_llm_2023_code.csv "
    "--num-requests 200 --rate-scale 0.5\n\n"
    "  inferplan bench http://127.0.0.1:8080/v1 --api chat --workload code --concurrency 4 --closed-loop "
    "--num-requests 50 --max-output-tokens 128\n\n"
    "  inferplan bench http://127.0.0.1:8000/v1 --workload chat:rate=2,duration=120 "
    "--workload batch:count=200,deadline=10m   (classes: each request's priority is sent)"
)
COMPARE_EPILOG = (
    "Examples:\n\n  inferplan compare bench-20261125-101500-ab12cd sim-20261125-101730-ef34gh\n\n"
    "  inferplan compare BENCH_RUN SIM_RUN --json"
)


@app.command("bench", epilog=BENCH_EPILOG)
def bench_cmd(
    url: Annotated[str, typer.Argument(help="API base of an OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1")],
    model: Annotated[str, typer.Option(help="model name the server knows (default: its first listed model)")] = "",
    api: Annotated[str,
                   typer.Option(help="completions (/v1/completions) or chat (/v1/chat/completions)")] = "completions",
    workload: options.Workloads = None,
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
    slo: options.Slo = None,
    trace_format: options.TraceFormat = None,
    skip_bad_rows: options.SkipBadRows = False,
    out_dir: options.OutDir = Path("inferplan-runs"),
    registry: options.RegistryPath = None,
    as_json: options.Json = False,
) -> None:
    """Replay a workload against a live endpoint; record every request like `simulate` does."""
    from inferplan.api import BenchConfig, BenchContext, Registry, join_workloads, run_bench

    if api not in ("completions", "chat"):
        raise InputError(f"--api must be 'completions' or 'chat', got {api!r}")
    eos = {"auto": None, "on": True, "off": False}
    if ignore_eos not in eos:
        raise InputError(f"--ignore-eos must be auto, on or off, got {ignore_eos!r}")
    if closed_loop and not concurrency:
        raise InputError("--closed-loop needs --concurrency N (how many requests to keep in flight)")
    if not timeout > 0:
        raise InputError(f"--timeout must be positive, got {timeout:g}")
    cfg = BenchConfig(url=url, model=model, api=api, workload=join_workloads(workload), rate=rate,  # type: ignore[arg-type]
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
        emit_json(run.summary.to_json() | {"run_id": run.run_id, "out_dir": str(run.out_dir),
                                           "report": str(run.report_path), "registry": str(reg.path)})
    else:
        for note in run.notes:
            out.print(f"note: {note}")
        ctx = run.summary.context
        assert isinstance(ctx, BenchContext), "a recorded bench's summary"
        print_summary(run.summary, title=f"{ctx.model} at {ctx.endpoint}")
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
    registry: options.RegistryPath = None,
    out_dir: options.OutDir = Path("inferplan-runs"),
    as_json: options.Json = False,
) -> None:
    """Metric by metric: OTHER against REFERENCE, with the error in percent, and overlaid CDFs in a report."""
    from inferplan.api import headline_error, write_compare_report
    from inferplan.cli.runs import compared

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


VALIDATE_EPILOG = (
    "Examples:\n\n  inferplan validate llama-3.2-1b --device local\n\n"
    "  inferplan validate qwen2.5-7b --layers 2 --json\n\n"
    "  inferplan validate ./my-model/config.json --checkpoint ./my-model\n\n"
    "  inferplan validate llama-3.1-8b --dtype bf16 --layers 4    # on a CUDA GPU, after `profile --cuda`"
)


@app.command("validate", epilog=VALIDATE_EPILOG)
def validate_cmd(
    model: options.Model = "llama-3.2-1b",
    device: Annotated[str,
                      typer.Option(help="the device the prediction is for; `local` = the profiled machine")] = "local",
    profile: Annotated[Path | None,
                       typer.Option(help="profile file (default: the one `inferplan profile` wrote)")] = None,
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

    from inferplan.api import DeviceProfile, Registry, run_validate

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
    t = Table(title=f"{res.model} on {res.device} ({res.dtype}, ran on {res.backend}); profile: {res.profile_source}")
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
