"""CLI verbs for simulation and the run registry: `simulate`, `runs list|show|compare`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from inferplan.cli_output import emit_json, err, out
from inferplan.errors import InputError
from inferplan.report.compare import compare_runs
from inferplan.runs import SimulationConfig, run_simulation
from inferplan.store import Registry, RunRecord


SIM_EPILOG = (
    "Examples:\n\n"
    "  inferplan simulate llama-3.1-8b --device h100-sxm --workload chat --rate 12 --duration 600 "
    "--slo ttft_p90=1s,tpot_p90=50ms\n\n"
    "  inferplan simulate qwen3-32b --device a100-80gb --tp 2 --replicas 4 --router least-kv "
    "--workload ../shared/data/traces/azure_llm_2023_conv.csv --rate-scale 3\n\n"
    "  inferplan simulate llama-3.1-8b --device l4 --policy sarathi --chunk-size 512 --workload trace.jsonl --json\n\n"
    "  inferplan simulate llama-3.1-8b --device h100-sxm --workload summarize --rate 8 --prefill-replicas 1 "
    "--replicas 1 --slo ttft_p90=1s,tpot_p90=15ms"
)


def _ms(x: float | None) -> str:
    return "-" if x is None else f"{x * 1e3:,.1f}"


def print_summary(s: dict[str, Any]) -> None:
    t = Table(title=f"{s['deployment']} - {s['workload']['name']} ({s['num_requests']:,} requests)")
    for col in ("metric", "p50", "p90", "p99", "mean"):
        t.add_column(col, justify="left" if col == "metric" else "right")
    for key, label in (("ttft_s", "TTFT ms"), ("tpot_s", "TPOT ms"), ("itl_s", "ITL ms"), ("e2e_s", "E2E ms"),
                       ("queue_delay_s", "queue ms")):
        v = s[key]
        t.add_row(label, _ms(v["p50"]), _ms(v["p90"]), _ms(v["p99"]), _ms(v["mean"]))
    out.print(t)
    cost = s["cost_per_million_output_tokens"]
    out.print(
        f"finished {s['num_finished']:,}, rejected {s['num_rejected']:,}, preemptions {s['num_preemptions']:,} | "
        f"{s['throughput_output_tokens_per_s']:,.0f} output tok/s, {s['throughput_requests_per_s']:.2f} req/s | "
        f"goodput {s['goodput_requests_per_s']:.2f} req/s"
        + (f" | ${s['cost_per_hour']:.2f}/h, ${cost:.3f} per M output tokens" if cost is not None else "")
        + (f" | {s['energy_j_per_output_token']:.2f} J/token" if s["energy_j_per_output_token"] else "")
    )
    for c in s["slos"]:
        verdict = "[green]met[/]" if c["met"] else "[red]missed[/]"
        out.print(f"SLO {c['slo']}: measured {_ms(c['value_s'])} ms - {verdict}")
    if s["slo_attainment"] is not None:
        out.print(f"SLO attainment (requests meeting every SLO): {s['slo_attainment']:.1%}")
    if s["rejected_by_reason"]:
        out.print("rejected: " + ", ".join(f"{k}: {v}" for k, v in s["rejected_by_reason"].items()))
    band = s.get("step_time_range_pct")
    if band is not None:
        out.print(f"calibrated profile: step times are uncertain by +-{band:.0f}% (1 s.d.); latencies scale with them "
                  "at light load and by more near saturation")


def register(app: typer.Typer) -> None:
    runs_app = typer.Typer(help="List, show and compare recorded runs.", no_args_is_help=True)
    app.add_typer(runs_app, name="runs")

    @app.command("simulate", epilog=SIM_EPILOG)
    def simulate_cmd(
        model: Annotated[str, typer.Argument(help="catalog name or path to a config.json")] = "llama-3.1-8b",
        device: Annotated[str, typer.Option(help="device name or YAML file")] = "h100-sxm",
        workload: Annotated[str, typer.Option(help="preset (chat, code, summarize, batch, diurnal-chat, bursty-chat) "
                                                   "or a trace file (Azure/BurstGPT CSV, Mooncake JSONL, generic)")] = "chat",
        rate: Annotated[float | None, typer.Option(help="requests per second (presets), or rescale a trace to it")] = None,
        rate_scale: Annotated[float | None, typer.Option(help="multiply the arrival rate (e.g. 3 = 3x faster)")] = None,
        duration: Annotated[float | None, typer.Option(help="seconds of arrivals (presets: default 600)")] = None,
        num_requests: Annotated[int | None, typer.Option(help="number of requests (first N of a trace)")] = None,
        seed: Annotated[int, typer.Option(help="random seed: same seed, same result")] = 0,
        slo: Annotated[str | None, typer.Option(help="e.g. ttft_p90=1s,tpot_p90=50ms (metrics: ttft, tpot, itl, e2e)")] = None,
        tp: Annotated[int, typer.Option(help="tensor-parallel degree per replica")] = 1,
        pp: Annotated[int, typer.Option(help="pipeline-parallel degree per replica")] = 1,
        ep: Annotated[bool, typer.Option("--ep", help="MoE: split whole experts over the --tp devices (expert parallelism)")] = False,
        dp_attention: Annotated[bool, typer.Option("--dp-attention", help="MoE: attention data-parallel over the --tp devices, experts expert-parallel")] = False,
        replicas: Annotated[int, typer.Option(help="number of replicas")] = 1,
        router: Annotated[str, typer.Option(help="round-robin, least-outstanding, least-kv, power-of-two, "
                                                 "session-affinity")] = "round-robin",
        policy: Annotated[str, typer.Option(help="vllm, sarathi, orca, static, llamacpp")] = "vllm",
        chunk_size: Annotated[int, typer.Option(help="sarathi: tokens per step")] = 512,
        parallel: Annotated[int, typer.Option(help="llamacpp: server slots (-np)")] = 4,
        ctx_size: Annotated[int | None, typer.Option(help="llamacpp: total context (-c), split across slots")] = None,
        weights: Annotated[str, typer.Option(help="weight format")] = "bf16",
        kv: Annotated[str, typer.Option(help="KV-cache format")] = "bf16",
        max_num_seqs: Annotated[int, typer.Option(help="engine: max running sequences")] = 256,
        max_num_batched_tokens: Annotated[int, typer.Option(help="engine: token budget per step")] = 8192,
        gpu_memory_utilization: Annotated[float, typer.Option(help="engine: share of device memory")] = 0.9,
        prefix_caching: Annotated[bool, typer.Option("--prefix-caching/--no-prefix-caching",
                                                     help="cache full prompt blocks for reuse")] = False,
        chunked_prefill: Annotated[bool, typer.Option("--chunked-prefill/--no-chunked-prefill")] = True,
        priority: Annotated[bool, typer.Option("--priority", help="schedule by request priority, not FCFS")] = False,
        max_waiting: Annotated[int, typer.Option(help="reject arrivals when this many wait on a replica (0: never)")] = 0,
        skip_bad_rows: Annotated[bool, typer.Option("--skip-bad-rows", help="skip malformed trace rows, counted")] = False,
        trace_format: Annotated[str | None, typer.Option(help="azure, burstgpt, mooncake, generic (default: detect)")] = None,
        profile: Annotated[Path | None, typer.Option(help="device profile YAML from `inferplan profile`")] = None,
        prefill_replicas: Annotated[int, typer.Option(help="disaggregate: this many prefill replicas; --replicas "
                                                           "then counts decode replicas (0: aggregated)")] = 0,
        prefill_device: Annotated[str | None, typer.Option(help="device of the prefill pool (default --device)")] = None,
        prefill_tp: Annotated[int | None, typer.Option(help="tensor parallelism of the prefill pool (default --tp)")] = None,
        kv_link_gb_s: Annotated[float | None, typer.Option(help="KV transfer link, GB/s (default: the device's link)")] = None,
        out_dir: Annotated[Path, typer.Option("--out", help="folder for run outputs")] = Path("inferplan-runs"),
        registry: Annotated[Path | None, typer.Option(help="run registry SQLite file")] = None,
        as_json: Annotated[bool, typer.Option("--json", help="print the summary as JSON")] = False,
        no_report: Annotated[bool, typer.Option("--no-report", help="skip the HTML report")] = False,
    ) -> None:
        """Simulate serving MODEL under a workload; print a summary and write a report."""
        options = {"chunk_size": chunk_size, "parallel": parallel}
        if ctx_size:
            options["ctx_size"] = ctx_size
        cfg = SimulationConfig(
            model=model, device=device, weights=weights, kv=kv, tp=tp, pp=pp, ep=ep, dp_attention=dp_attention,
            replicas=replicas, policy=policy,
            policy_options=options, router=router, workload=workload, rate=rate, rate_scale=rate_scale,
            duration_s=duration, num_requests=num_requests, seed=seed, slo=slo, max_num_seqs=max_num_seqs,
            max_num_batched_tokens=max_num_batched_tokens, gpu_memory_utilization=gpu_memory_utilization,
            enable_prefix_caching=prefix_caching, enable_chunked_prefill=chunked_prefill,
            priority_scheduling=priority, max_waiting=max_waiting, skip_bad_rows=skip_bad_rows,
            trace_format=trace_format, profile=str(profile) if profile else None,
            prefill_replicas=prefill_replicas, prefill_device=prefill_device, prefill_tp=prefill_tp,
            kv_link_gb_s=kv_link_gb_s,
        )
        if replicas < 1 or prefill_replicas < 0:
            raise InputError(f"--replicas must be at least 1 and --prefill-replicas at least 0 "
                             f"(got {replicas}, {prefill_replicas})")
        show = err.is_terminal and not as_json
        with Progress(TextColumn("simulating"), BarColumn(), TextColumn("{task.completed:,}/{task.total:,} arrivals"),
                      TimeElapsedColumn(), console=err, disable=not show, transient=True) as bar:
            task = bar.add_task("sim", total=None)
            run = run_simulation(cfg, out_dir=out_dir, registry=Registry(registry) if registry else None,
                                 write_report=not no_report,
                                 progress=lambda done, total: bar.update(task, completed=done, total=total))
        if as_json:
            emit_json(run.summary | {"run_id": run.run_id, "out_dir": str(run.out_dir),
                                     "report": str(run.report_path) if run.report_path else None})
            return
        print_summary(run.summary)
        out.print(f"run {run.run_id}; outputs in {run.out_dir}")
        if run.report_path:
            out.print(f"report: {run.report_path}")

    @runs_app.command("list")
    def runs_list(
        limit: Annotated[int, typer.Option(help="how many, newest first")] = 20,
        registry: Annotated[Path | None, typer.Option(help="run registry SQLite file")] = None,
        as_json: Annotated[bool, typer.Option("--json")] = False,
    ) -> None:
        """Recorded runs, newest first."""
        reg = Registry(registry)
        records = reg.list(limit)
        if as_json:
            emit_json([_brief(r) for r in records])
            return
        t = Table(title=f"runs in {reg.path}")
        for col in ("id", "created (UTC)", "what", "TTFT p90 ms", "TPOT p90 ms", "out tok/s"):
            t.add_column(col)
        for r in records:
            s = r.summary
            t.add_row(r.id, r.created_utc, r.label, _ms(s.get("ttft_s", {}).get("p90")),
                      _ms(s.get("tpot_s", {}).get("p90")), f"{s.get('throughput_output_tokens_per_s', 0):,.0f}")
        out.print(t)

    @runs_app.command("show")
    def runs_show(
        run_id: Annotated[str, typer.Argument(help="run id (or a unique part of it)")],
        registry: Annotated[Path | None, typer.Option(help="run registry SQLite file")] = None,
        as_json: Annotated[bool, typer.Option("--json")] = False,
    ) -> None:
        """One run's inputs, summary and files."""
        r = Registry(registry).get(run_id)
        if as_json:
            emit_json(_brief(r) | {"inputs": r.inputs, "summary": r.summary})
            return
        out.print(f"[bold]{r.id}[/] ({r.kind}, {r.created_utc}): {r.label}")
        if "ttft_s" in r.summary:
            print_summary(r.summary)
        out.print(f"outputs: {r.out_dir}")
        if r.report:
            out.print(f"report: {r.report}")

    @runs_app.command("compare")
    def runs_compare(
        run_a: Annotated[str, typer.Argument(help="baseline run")],
        run_b: Annotated[str, typer.Argument(help="other run")],
        registry: Annotated[Path | None, typer.Option(help="run registry SQLite file")] = None,
        as_json: Annotated[bool, typer.Option("--json")] = False,
    ) -> None:
        """Main metrics of two runs side by side, with the change from A to B."""
        reg = Registry(registry)
        a, b = reg.get(run_a), reg.get(run_b)
        rows = compare_runs(a.summary, b.summary)
        if as_json:
            emit_json({"a": a.id, "b": b.id, "metrics": rows})
            return
        print_comparison(rows, f"A = {a.id}   B = {b.id}", ("A", "B", "B - A", "change"))


def print_comparison(rows: list[dict[str, Any]], title: str, labels: tuple[str, str, str, str]) -> None:
    """Rows of `compare_runs` as a table: metric, A, B, B - A, change in percent."""
    t = Table(title=title)
    for col in ("metric", *labels):
        t.add_column(col, justify="left" if col == "metric" else "right")
    for row in rows:
        pct = "-" if row["change_pct"] is None else f"{row['change_pct']:+.1f}%"
        t.add_row(row["metric"], _fmt(row["a"]), _fmt(row["b"]), _fmt(row["delta"]), pct)
    out.print(t)


def _fmt(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x:,.4g}"


def _brief(r: RunRecord) -> dict[str, Any]:
    return {"id": r.id, "kind": r.kind, "created_utc": r.created_utc, "label": r.label, "out_dir": r.out_dir,
            "report": r.report}
