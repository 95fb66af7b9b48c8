"""CLI verbs that meet reality: `bench`, `compare` (and `profile`, `validate`, `calibrate`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from inferplan.cli_output import emit_json, err, out
from inferplan.cli_sim import print_comparison, print_summary
from inferplan.errors import InputError
from inferplan.measure.bench import RequestRecord
from inferplan.report.compare import compare_runs, headline_error, write_compare_report
from inferplan.runs import BenchConfig, run_bench
from inferplan.store import Registry

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


def _ms(x: float | None) -> str:
    return "-" if x is None else f"{x * 1e3:,.1f}"


def register(app: typer.Typer) -> None:
    @app.command("bench", epilog=BENCH_EPILOG)
    def bench_cmd(
        url: Annotated[str, typer.Argument(help="API base of an OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1")],
        model: Annotated[str, typer.Option(help="model name the server knows (default: its first listed model)")] = "",
        api: Annotated[str, typer.Option(help="completions (/v1/completions) or chat (/v1/chat/completions)")] = "completions",
        workload: Annotated[str, typer.Option(help="preset or trace file, as for `simulate`")] = "chat",
        rate: Annotated[float | None, typer.Option(help="requests per second")] = None,
        rate_scale: Annotated[float | None, typer.Option(help="multiply the arrival rate")] = None,
        duration: Annotated[float | None, typer.Option(help="seconds of arrivals")] = None,
        num_requests: Annotated[int | None, typer.Option(help="number of requests")] = None,
        seed: Annotated[int, typer.Option(help="random seed of the workload and the prompt words")] = 0,
        max_input_tokens: Annotated[int | None, typer.Option(help="cap prompt lengths (small local models)")] = None,
        max_output_tokens: Annotated[int | None, typer.Option(help="cap output lengths")] = None,
        concurrency: Annotated[int | None, typer.Option(help="at most this many requests in flight")] = None,
        closed_loop: Annotated[bool, typer.Option("--closed-loop", help="ignore arrival times: send the next "
                                                   "request as soon as a --concurrency slot frees")] = False,
        timeout: Annotated[float, typer.Option(help="seconds before a request counts as timed out")] = 120.0,
        ignore_eos: Annotated[str, typer.Option(help="auto (use it if the server accepts it), on, off")] = "auto",
        api_key_env: Annotated[str | None, typer.Option(help="environment variable holding a bearer token")] = None,
        slo: Annotated[str | None, typer.Option(help="e.g. ttft_p90=1s,tpot_p90=50ms")] = None,
        trace_format: Annotated[str | None, typer.Option(help="trace format (default: detect)")] = None,
        skip_bad_rows: Annotated[bool, typer.Option("--skip-bad-rows")] = False,
        out_dir: Annotated[Path, typer.Option("--out", help="folder for run outputs")] = Path("inferplan-runs"),
        registry: Annotated[Path | None, typer.Option(help="run registry SQLite file")] = None,
        as_json: Annotated[bool, typer.Option("--json", help="print the summary as JSON")] = False,
    ) -> None:
        """Replay a workload against a live endpoint; record every request like `simulate` does."""
        if api not in ("completions", "chat"):
            raise InputError(f"--api must be 'completions' or 'chat', got {api!r}")
        eos = {"auto": None, "on": True, "off": False}
        if ignore_eos not in eos:
            raise InputError(f"--ignore-eos must be auto, on or off, got {ignore_eos!r}")
        if closed_loop and not concurrency:
            raise InputError("--closed-loop needs --concurrency N (how many requests to keep in flight)")
        cfg = BenchConfig(url=url, model=model, api=api, workload=workload, rate=rate,  # type: ignore[arg-type]
                          rate_scale=rate_scale, duration_s=duration, num_requests=num_requests, seed=seed,
                          trace_format=trace_format, skip_bad_rows=skip_bad_rows, max_input_tokens=max_input_tokens,
                          max_output_tokens=max_output_tokens, concurrency=concurrency, honour_arrivals=not closed_loop,
                          timeout_s=timeout, ignore_eos=eos[ignore_eos], api_key_env=api_key_env, slo=slo)
        show = err.is_terminal and not as_json
        with Progress(TextColumn("benchmarking"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[fail]}"),
                      TimeElapsedColumn(), console=err, disable=not show, transient=True) as bar:
            task = bar.add_task("bench", total=None, fail="")
            failures = [0]

            def done(rec: RequestRecord) -> None:
                failures[0] += rec.status != "finished"
                bar.update(task, advance=1, fail=f"{failures[0]} failed" if failures[0] else "")

            run = run_bench(cfg, out_dir=out_dir, registry=Registry(registry) if registry else None,
                            on_start=lambda n: bar.update(task, total=n), on_done=done)
        if as_json:
            emit_json(run.summary | {"run_id": run.run_id, "out_dir": str(run.out_dir), "report": str(run.report_path)})
        else:
            for note in run.notes:
                out.print(f"note: {note}")
            print_summary(run.summary | {"deployment": f"{run.summary['model']} at {run.summary['endpoint']}",
                                         "num_preemptions": 0, "cost_per_hour": None,
                                         "cost_per_million_output_tokens": None, "energy_j_per_output_token": None})
            out.print(f"run {run.run_id}; outputs in {run.out_dir}")
            out.print(f"report: {run.report_path}")
        if run.interrupted:
            raise typer.Exit(130)

    @app.command("compare", epilog=COMPARE_EPILOG)
    def compare_cmd(
        reference: Annotated[str, typer.Argument(help="the reference run, usually a bench run (measured)")],
        other: Annotated[str, typer.Argument(help="the run to check against it, usually a simulation")],
        registry: Annotated[Path | None, typer.Option(help="run registry SQLite file")] = None,
        out_dir: Annotated[Path, typer.Option("--out", help="folder for the comparison report")] = Path("inferplan-runs"),
        as_json: Annotated[bool, typer.Option("--json")] = False,
    ) -> None:
        """Metric by metric: OTHER against REFERENCE, with the error in percent, and overlaid CDFs in a report."""
        reg = Registry(registry)
        a, b = reg.get(reference), reg.get(other)
        rows = compare_runs(a.summary, b.summary)
        report = write_compare_report(out_dir / f"compare-{a.id}-vs-{b.id}.html", a, b, rows)
        if as_json:
            emit_json({"reference": a.id, "other": b.id, "metrics": rows, "report": str(report)})
            return
        print_comparison(rows, f"reference = {a.id} ({a.kind})   other = {b.id} ({b.kind})",
                         ("reference", "other", "other - ref", "error"))
        mape = headline_error(rows)
        if mape is not None:
            out.print(f"median absolute error over TTFT, TPOT and E2E (p50, p90) and output throughput: {mape:.1f}%")
        out.print(f"report: {report}")
