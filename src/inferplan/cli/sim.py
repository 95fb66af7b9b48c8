"""CLI verb `simulate`: one fleet under one workload, summarised, reported and recorded."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from inferplan.api import InputError
from inferplan.cli import options
from inferplan.cli.app import app
from inferplan.cli.output import ProgressReport, check_out_dir, emit_json, interrupted, out
from inferplan.cli.render import print_summary

if TYPE_CHECKING:
    from inferplan.api import SimulationRun

SIM_EPILOG = (
    "Examples:\n\n"
    "  inferplan simulate llama-3.1-8b --device h100-sxm --workload chat --rate 12 --duration 600 "
    "--slo ttft_p90=1s,tpot_p90=50ms\n\n"
    "  inferplan simulate qwen3-32b --device a100-80gb --tp 2 --replicas 4 --router least-kv "
    "--workload ../shared/data/traces/azure_llm_2023_conv.csv --rate-scale 3\n\n"
    "  inferplan simulate llama-3.1-70b --device h100-sxm --tp 4 --engine trtllm --workload chat --rate 8\n\n"
    "  inferplan simulate llama-3.1-8b --device h100-sxm --workload chat --rate 2 --spec eagle3 --spec-tokens 3\n\n"
    "  inferplan simulate llama-3.1-8b --device h100-sxm --replicas 4 --router session-affinity --prefix-caching "
    "--workload multi-turn --rate 20\n\n"
    "  inferplan simulate llama-3.1-8b --device l4 --policy sarathi --chunk-size 512 --workload trace.jsonl --json\n\n"
    "  inferplan simulate llama-3.1-8b --device h100-sxm --workload summarize --rate 8 --prefill-replicas 1 "
    "--replicas 1 --slo ttft_p90=1s,tpot_p90=15ms"
)


@app.command("simulate", epilog=SIM_EPILOG)
def simulate_cmd(
    model: options.Model = "llama-3.1-8b",
    device: Annotated[str, typer.Option(help="device name or YAML file")] = "h100-sxm",
    workload: options.Workloads = None,
    rate: options.Rate = None, rate_scale: options.RateScale = None,
    duration: options.Duration = None, num_requests: options.NumRequests = None,
    seed: options.Seed = 0, slo: options.Slo = None,
    tp: options.Tp = 1, pp: options.Pp = 1, ep: options.Ep = False, dp_attention: options.DpAttention = False,
    replicas: Annotated[int, typer.Option(help="number of replicas (with --autoscale-target: the most)")] = 1,
    autoscale_target: options.AutoscaleTarget = None, autoscale_metric: options.AutoscaleMetric = "concurrency",
    min_replicas: options.MinReplicas = 1, cold_start_spread: options.ColdStartSpread = 0.3,
    image_pull: options.ImagePull = False,
    router: Annotated[str, typer.Option(help="round-robin, least-outstanding, least-kv, power-of-two, "
                                             "session-affinity, cache-aware, precise-prefix")] = "round-robin",
    engine: options.Engine = None,
    policy: Annotated[str | None, typer.Option(help="scheduler, to override the engine's: vllm, sglang, trtllm, "
                                                    "sarathi, orca, static, llamacpp")] = None,
    chunk_size: Annotated[int, typer.Option(help="sarathi: tokens per step")] = 512,
    parallel: Annotated[int | None, typer.Option(help="llamacpp: server slots (-np; default --max-num-seqs, "
                                                      "each with the context the KV cache allows)")] = None,
    ctx_size: Annotated[int | None, typer.Option(help="llamacpp: total context (-c), split across slots")] = None,
    weights: options.Weights = None,
    kv: options.KvFormat = "bf16",
    max_num_seqs: options.MaxNumSeqs = None,
    max_num_batched_tokens: options.MaxBatchedTokens = None,
    gpu_memory_utilization: options.GpuMemoryUtilization = None,
    prefix_caching: Annotated[bool, typer.Option("--prefix-caching/--no-prefix-caching",
                                                 help="cache full prompt blocks for reuse")] = False,
    cpu_kv_cache: options.CpuKvCache = 0.0, swap_space: options.SwapSpace = 0.0,
    kv_budget: options.KvBudget = None,
    chunked_prefill: Annotated[bool | None, typer.Option("--chunked-prefill/--no-chunked-prefill",
                                                         help="default: the engine's")] = None,
    priority: options.Priority = None, offline_budget: options.OfflineBudget = None,
    power_cap: options.PowerCap = None, wired_limit: options.WiredLimit = None,
    max_waiting: Annotated[int, typer.Option(help="reject arrivals when this many wait on a replica (0: never)")] = 0,
    skip_bad_rows: options.SkipBadRows = False,
    trace_format: options.TraceFormat = None,
    profile: options.ProfileFile = None,
    prefill_replicas: Annotated[int, typer.Option(help="disaggregate: this many prefill replicas; --replicas "
                                                       "then counts decode replicas (0: aggregated)")] = 0,
    prefill_device: Annotated[str | None, typer.Option(help="device of the prefill pool (default --device)")] = None,
    prefill_tp: Annotated[int | None,
                          typer.Option(help="tensor parallelism of the prefill pool (default --tp)")] = None,
    kv_link_gb_s: Annotated[float | None,
                            typer.Option(help="KV transfer link, GB/s (default: the device's link)")] = None,
    session_turns: options.SessionTurns = None, think_time: options.ThinkTime = None,
    spec: options.Spec = None, spec_tokens: options.SpecTokens = None,
    spec_acceptance: options.SpecAcceptance = None, spec_draft: options.SpecDraft = None,
    out_dir: options.OutDir = Path("inferplan-runs"),
    registry: options.RegistryPath = None,
    as_json: options.Json = False,
    no_report: Annotated[bool, typer.Option("--no-report", help="skip the HTML report")] = False,
) -> None:
    """Simulate serving MODEL under a workload; print a summary and write a report."""
    from inferplan.api import Registry, SimulationConfig, join_workloads, run_simulation

    if replicas < 1 or prefill_replicas < 0:
        raise InputError(f"--replicas must be at least 1 and --prefill-replicas at least 0 "
                         f"(got {replicas}, {prefill_replicas})")
    cfg = SimulationConfig(
        model=model, device=device, weights=weights, kv=kv, tp=tp, pp=pp, ep=ep, dp_attention=dp_attention,
        replicas=replicas, engine=engine, policy=policy, router=router, workload=join_workloads(workload), rate=rate,
        policy_options=_policy_options(chunk_size=chunk_size, parallel=parallel, ctx_size=ctx_size),
        rate_scale=rate_scale, duration_s=duration, num_requests=num_requests, seed=seed, slo=slo,
        max_num_seqs=max_num_seqs, max_num_batched_tokens=max_num_batched_tokens, enable_prefix_caching=prefix_caching,
        cpu_kv_cache_gib=cpu_kv_cache, swap_space_gib=swap_space, kv_budget=kv_budget,
        gpu_memory_utilization=gpu_memory_utilization, enable_chunked_prefill=chunked_prefill,
        priority_scheduling=priority, offline_budget_s=offline_budget, max_waiting=max_waiting,
        skip_bad_rows=skip_bad_rows, trace_format=trace_format, profile=str(profile) if profile else None,
        prefill_replicas=prefill_replicas, prefill_device=prefill_device, prefill_tp=prefill_tp,
        kv_link_gb_s=kv_link_gb_s, spec=spec, spec_tokens=spec_tokens, spec_acceptance=spec_acceptance,
        spec_draft=spec_draft, session_turns=session_turns, think_time_s=think_time, power_cap_w=power_cap,
        wired_limit_gib=wired_limit, autoscale_target=autoscale_target, autoscale_metric=autoscale_metric,
        min_replicas=min_replicas, cold_start_spread=cold_start_spread, image_pull=image_pull)
    folder = check_out_dir(out_dir)
    reg = Registry(registry)
    with interrupted(lambda: "the simulation stopped before it finished; nothing was written or recorded"), \
            ProgressReport("simulating", quiet=as_json, unit="arrivals") as bar:
        run = run_simulation(cfg, out_dir=folder, registry=reg, write_report=not no_report, progress=bar.update)
    _print_run(run, reg.path, as_json)


def _print_run(run: SimulationRun, registry: Path, as_json: bool) -> None:
    """The run's summary (or its JSON), where it was recorded and its report."""
    if as_json:
        emit_json(run.summary.to_json() | {"run_id": run.run_id, "out_dir": str(run.out_dir), "registry": str(registry),
                                 "report": str(run.report_path) if run.report_path else None})
        return
    print_summary(run.summary)
    scaler, cfg = run.result.scaler, run.config
    if scaler is not None:
        counts = [n for _, n in scaler.timeline]
        mean = sum(scaler.billed_s) / max(run.result.makespan_s, 1e-9)
        out.print(f"autoscaled (HPA on {cfg.autoscale_metric}, target {cfg.autoscale_target:g} per replica, "
                  f"{cfg.min_replicas}-{cfg.replicas} replicas): {min(counts)}-{max(counts)} on, {mean:.2f} on "
                  f"average, {len(counts) - 1} changes; cost per hour above is the billed average", soft_wrap=True)
        starts = sorted(scaler.cold_starts)
        if starts:
            pol = scaler.pools[0].policy
            out.print(f"cold starts: {len(starts)}, {starts[0]:.0f}-{starts[-1]:.0f} s, drawn around a "
                      f"{pol.cold_start_s:.0f} s median (pod, {'image pull, ' if cfg.image_pull else ''}weights, "
                      f"engine start-up) with spread {pol.cold_start_spread:g}", soft_wrap=True)
    out.print(f"run {run.run_id} recorded in {registry}; outputs in {run.out_dir}")
    if run.report_path:
        out.print(f"report: {run.report_path}")


def _policy_options(**given: int | None) -> dict[str, int]:
    """The scheduler options the user gave (a left-out one keeps the policy's own default)."""
    return {k: v for k, v in given.items() if v is not None}
