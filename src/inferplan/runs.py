"""Running a simulation as a recorded run: inputs -> simulate -> summary, records, report, registry."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from inferplan.errors import InputError
from inferplan.fileio import write_text_atomic
from inferplan.measure.request_record import Api, Endpoint, RequestRecord
from inferplan.perf.cold_start import cold_start
from inferplan.perf.deployment import Deployment
from inferplan.perf.fit import FitResult, speed_range_pct
from inferplan.perf.ranges import latency_spread
from inferplan.perf.resolve import resolve_deployment, resolve_speculation
from inferplan.report.records import write_request_records
from inferplan.report.sim_report import write_sim_report
from inferplan.sim.cluster import Cluster, SimOptions
from inferplan.sim.digest import digest
from inferplan.sim.loop import Progress, SimResult, simulate
from inferplan.sim.policies import get_policy
from inferplan.sim.reactive import ScalingPolicy
from inferplan.sim.slo import parse_slos
from inferplan.sim.summary import summarize
from inferplan.sim.summary_types import BenchContext, SimContext, Summary
from inferplan.store import Registry
from inferplan.workload.presets import WorkloadSpec
from inferplan.workload.request import Workload

if TYPE_CHECKING:
    from inferplan.measure.validate import ValidationResult
    from inferplan.plan.search import PlanRequest, PlanResult


@dataclass(frozen=True, slots=True, kw_only=True)
class SimulationConfig(WorkloadSpec):
    """Everything that determines a simulation's result (so equal configs give equal summaries)."""

    model: str = "llama-3.1-8b"
    device: str = "h100-sxm"
    weights: str | None = None  # None: the checkpoint's own format (a quantized config.json), else bf16
    kv: str = "bf16"
    tp: int = 1
    pp: int = 1
    ep: bool = False
    dp_attention: bool = False
    replicas: int = 1
    engine: str | None = None  # None: the device's default engine (vLLM on GPUs, llama.cpp elsewhere)
    policy: str | None = None  # None: the scheduler the engine runs
    policy_options: dict[str, int] = field(default_factory=dict)
    router: str = "round-robin"
    slo: str | None = None
    # engine limits; None: the engine's own default
    max_num_seqs: int | None = None
    max_num_batched_tokens: int | None = None
    gpu_memory_utilization: float | None = None
    enable_prefix_caching: bool = False
    enable_chunked_prefill: bool | None = None
    long_prefill_token_threshold: int = 0
    cpu_kv_cache_gib: float = 0.0  # a host-memory tier for evicted prefix blocks (with enable_prefix_caching)
    swap_space_gib: float = 0.0  # host memory preemption swaps KV into (0: preemption recomputes)
    priority_scheduling: bool | None = None  # None: priority when the workload's classes differ in priority
    offline_budget_s: float | None = None  # HyGen's step budget for offline work (None: off)
    max_waiting: int = 0
    profile: str | None = None
    prefill_replicas: int = 0  # > 0: disaggregated; ``replicas`` then counts decode replicas
    prefill_device: str | None = None
    prefill_tp: int | None = None
    kv_link_gb_s: float | None = None
    # speculative decoding (None: off): a method, tokens proposed per step, acceptance (a rate or a file of
    # measured per-request rates), and the draft model of method "draft"
    spec: str | None = None
    spec_tokens: int | None = None
    spec_acceptance: str | None = None
    spec_draft: str | None = None
    kv_budget: str | None = None  # KV eviction, METHOD:TOKENS (None: keep every token)
    power_cap_w: float | None = None  # a power limit per device (None: none)
    wired_limit_gib: float | None = None  # a Mac's GPU wired-memory limit (None: macOS's default)
    # a reactive autoscaler (Kubernetes' HPA) over the ``replicas`` (its maximum); None: a fixed fleet
    autoscale_target: float | None = None
    autoscale_metric: str = "concurrency"
    min_replicas: int = 1
    cold_start_spread: float = 0.3  # lognormal sigma of each cold start around its median (perf/cold_start.py)
    image_pull: bool = False  # a started replica pulls the engine's image first

    def deployment(self, *, device: str | None = None, tp: int | None = None) -> Deployment:
        given = {"max_num_seqs": self.max_num_seqs, "max_num_batched_tokens": self.max_num_batched_tokens,
                 "gpu_memory_utilization": self.gpu_memory_utilization,
                 "enable_chunked_prefill": self.enable_chunked_prefill,
                 "enable_prefix_caching": self.enable_prefix_caching,
                 "long_prefill_token_threshold": self.long_prefill_token_threshold,
                 "cpu_kv_cache_gib": self.cpu_kv_cache_gib, "swap_space_gib": self.swap_space_gib}
        return resolve_deployment(self.model, device or self.device, weights=self.weights, kv=self.kv,
                                  tp=tp or self.tp, pp=self.pp, ep=self.ep, dp_attention=self.dp_attention,
                                  limits=given, profile=Path(self.profile) if self.profile else None,
                                  engine=self.engine, kv_budget=self.kv_budget, power_cap_w=self.power_cap_w,
                                  wired_limit_gib=self.wired_limit_gib,
                                  speculation=resolve_speculation(
                                      self.spec, k=self.spec_tokens, acceptance=self.spec_acceptance,
                                      draft=self.spec_draft, seed=self.seed))


def run_folder(out_dir: Path | None, run_id: str) -> Path:
    """A run's output folder, absolute: the registry records it, and `compare` must find it from anywhere."""
    return (out_dir or Path("inferplan-runs")).expanduser().resolve() / run_id


@dataclass(frozen=True, slots=True)
class SimulationRun:
    run_id: str
    config: SimulationConfig
    summary: Summary
    result: SimResult
    out_dir: Path | None
    report_path: Path | None


def simulate_config(cfg: SimulationConfig, *, progress: Progress | None = None) -> tuple[SimResult, Summary]:
    """Build the workload and replicas for ``cfg``, simulate, summarise. No files."""
    slos = parse_slos(cfg.slo)
    dep = cfg.deployment()
    policy = get_policy(cfg.policy or dep.serving_engine.scheduler, cfg.policy_options)
    wl = cfg.build_workload()
    prefill = []
    if cfg.prefill_replicas:
        prefill = [cfg.deployment(device=cfg.prefill_device, tp=cfg.prefill_tp)] * cfg.prefill_replicas
    cluster = (Cluster.disaggregated(prefill, [dep] * cfg.replicas, kv_link_gb_s=cfg.kv_link_gb_s) if prefill
               else Cluster.replicas([dep] * cfg.replicas))
    options = SimOptions(max_waiting=cfg.max_waiting, priority=scheduling_by_priority(cfg, wl),
                         offline_budget_s=offline_budget(cfg), scaling=reactive_scaling(cfg, dep))
    res = simulate(wl, cluster, policy, router=cfg.router, seed=cfg.seed, options=options, progress=progress)
    deployment = dep.describe()
    if prefill:
        deployment = (f"prefill {cfg.prefill_replicas}x [{prefill[0].describe()}] + "
                      f"decode {cfg.replicas}x [{deployment}]")
    summary = summarize(res, slos)
    ranges, basis = latency_ranges(summary, dep.device.kind, dep.serving_engine.name)
    context = SimContext(workload=wl.describe(), deployment=deployment, prefill_replicas=cfg.prefill_replicas,
                         step_time_range_pct=speed_range_pct(dep), ranges=ranges, range_basis=basis)
    return res, replace(summary, context=context)


def reactive_scaling(cfg: SimulationConfig, dep: Deployment) -> tuple[tuple[tuple[int, ...], ScalingPolicy], ...]:
    """The HPA over the configuration's replicas (one pool), or none without an autoscale target."""
    if cfg.autoscale_target is None:
        return ()
    if cfg.prefill_replicas:
        raise InputError("--autoscale-target scales aggregated replicas; leave out --prefill-replicas")
    start = cold_start(dep, image_cached=not cfg.image_pull, spread=cfg.cold_start_spread)
    policy = ScalingPolicy(metric=cfg.autoscale_metric, target=cfg.autoscale_target, min_replicas=cfg.min_replicas,
                           max_replicas=cfg.replicas, cold_start_s=start.median_s, cold_start_spread=start.spread)
    return ((tuple(range(cfg.replicas)), policy),)


def scheduling_by_priority(cfg: SimulationConfig, wl: Workload) -> bool:
    """The user's choice, else priority where the workload's classes differ in priority (online before batch)."""
    return wl.mixes_priorities if cfg.priority_scheduling is None else cfg.priority_scheduling


def offline_budget(cfg: SimulationConfig) -> float:
    """HyGen's step budget in seconds (0: off); it ranks online work first, so it needs priority scheduling."""
    if cfg.offline_budget_s is None:
        return 0.0
    if not cfg.offline_budget_s > 0:
        raise InputError(f"--offline-budget must be a positive number of seconds, got {cfg.offline_budget_s:g}")
    if cfg.priority_scheduling is False:
        raise InputError("--offline-budget schedules online requests first: it needs priority scheduling; "
                         "leave out --fcfs")
    return cfg.offline_budget_s


def latency_ranges(summary: Summary, kind: str, engine: str = "") -> tuple[dict[str, tuple[float, float]], str]:
    """10-90% ranges of the median TTFT, TPOT, ITL and E2E from the residuals of ``kind`` under ``engine``
    (perf/ranges.py: llama.cpp's are llama-bench's prompt and generation speeds)."""
    ranges: dict[str, tuple[float, float]] = {}
    counts = []
    for metric in ("ttft", "tpot", "itl", "e2e"):
        found, value = latency_spread(kind, engine, metric), getattr(summary, f"{metric}_s").p50
        if found is not None and value is not None:
            spread, phase = found
            ranges[f"{metric}_p50"] = spread.truth_range(value)
            counts.append(f"{metric} {spread.count}" if phase == metric else f"{metric} from {phase} {spread.count}")
    what = "llama-bench" if engine == "llamacpp" else "calibration"
    basis = f"{kind} {what} residuals ({', '.join(counts)} measurements)" if ranges else ""
    return ranges, basis


def run_simulation(
    cfg: SimulationConfig,
    *,
    out_dir: Path | None = None,
    registry: Registry | None = None,
    write_report: bool = True,
    progress: Progress | None = None,
) -> SimulationRun:
    """Simulate and record: summary.json, requests.csv, report.html under ``out_dir``, and a registry entry.

    The registry is opened first, so a bad registry path fails before the work, not after it.
    """
    registry = registry or Registry()
    res, summary = simulate_config(cfg, progress=progress)
    published = summary.to_json()
    inputs = asdict(cfg)
    run_id = registry.new_run_id("sim", inputs)
    folder = run_folder(out_dir, run_id)
    write_text_atomic(folder / "summary.json", json.dumps(published, indent=2, sort_keys=True) + "\n")
    write_text_atomic(folder / "config.json", json.dumps(inputs, indent=2, sort_keys=True) + "\n")
    write_request_records(folder / "requests.csv", res)
    charts = digest(res)
    charts.write(folder / "digest.json")
    report = None
    if write_report:
        title = f"Simulation: {summary.deployment}"
        report = write_sim_report(folder / "report.html", charts, summary, inputs, title)
    scheduler = cfg.policy or cfg.engine or "default engine"
    label = f"{cfg.model} on {cfg.replicas}x{cfg.tp * cfg.pp} {cfg.device}, {cfg.workload}, {scheduler}"
    registry.add(run_id, "sim", label, inputs, published | {"wall_s": res.wall_s}, folder, report)
    return SimulationRun(run_id, cfg, summary, res, folder, report)


def record_fit(result: FitResult, inputs: dict[str, Any], registry: Registry) -> str:
    """A fit as a run in the registry (its result is its summary; a fit writes no files): the run id."""
    run_id = registry.new_run_id("fit", inputs)
    label = (f"fit {result.model} on {result.device}, {result.weights_format}/{result.kv_format}, "
             f"{result.context:,} tokens: {'fits' if result.fits_context else 'does not fit'}")
    registry.add(run_id, "fit", label, inputs | {"model": result.model, "device": result.device},
                 result.to_dict(), None, None)
    return run_id


@dataclass(frozen=True, slots=True)
class PlanRun:
    run_id: str
    result: PlanResult
    doc: dict[str, Any]
    out_dir: Path
    report_path: Path


def run_plan(req: PlanRequest, *, out_dir: Path | None = None, registry: Registry | None = None,
             progress: Callable[[str], None] | None = None) -> PlanRun:
    """Plan, then write plan.json, deploy/ and report.html under ``out_dir/RUN_ID`` and record the run."""
    # the planner, deploy files and plan report load here, not with this module: `simulate` needs none of them
    from inferplan.deploy.fleet_files import write_deploy  # noqa: PLC0415
    from inferplan.plan.search import plan  # noqa: PLC0415
    from inferplan.report.plan_report import plan_json, write_plan_report  # noqa: PLC0415

    registry = registry or Registry()
    result = plan(req, registry=registry, progress=progress)
    inputs = asdict(req)
    run_id = registry.new_run_id("plan", inputs)
    folder = run_folder(out_dir, run_id)
    deploy = write_deploy(result, folder / "deploy")
    if result.verification is not None:
        result.verification.write(folder / "verification.json")
    report = write_plan_report(result, folder / "report.html", inputs)
    artifacts = {"plan": str(folder / "plan.json"), "report": str(report), **{p.name: str(p) for p in deploy}}
    doc = plan_json(result, artifacts)
    write_text_atomic(folder / "plan.json", json.dumps(doc, indent=2, default=str) + "\n")
    label = f"plan {req.model}, {req.workload}, {req.slo}"
    registry.add(run_id, "plan", label, inputs, result.summary.to_json() | {"plan_cost_per_hour": doc["cost_per_hour"],
                                                                           "verified": doc["verified"]}, folder, report)
    return PlanRun(run_id, result, doc, folder, report)


@dataclass(frozen=True, slots=True, kw_only=True)
class BenchConfig(WorkloadSpec):
    """A benchmark of a live OpenAI-compatible endpoint under an inferplan workload."""

    url: str
    model: str = ""
    api: Api = "completions"
    concurrency: int | None = None
    honour_arrivals: bool = True
    timeout_s: float = 120.0
    ignore_eos: bool | None = None
    api_key_env: str | None = None
    slo: str | None = None


@dataclass(frozen=True, slots=True)
class BenchRun:
    run_id: str
    config: BenchConfig
    summary: Summary
    records: list[RequestRecord]
    out_dir: Path
    report_path: Path
    notes: list[str]
    interrupted: bool


def run_bench(cfg: BenchConfig, *, out_dir: Path | None = None, registry: Registry | None = None,
              on_start: Callable[[int], None] | None = None,
              on_done: Callable[[RequestRecord], None] | None = None) -> BenchRun:
    """Probe, replay, then write requests.csv, token_times.jsonl, summary.json and report.html; record the run.

    Records are written even when the run is interrupted (Ctrl-C): requests never sent are
    recorded as failed with the reason, so every request of the workload is accounted for.
    """
    # the HTTP client and bench report load here, not with this module: `simulate` needs neither
    from inferplan.measure.bench import ReplayOptions, probe, replay  # noqa: PLC0415
    from inferplan.measure.bench_records import bench_summary, write_bench_records  # noqa: PLC0415
    from inferplan.report.bench_report import write_bench_report  # noqa: PLC0415

    slos = parse_slos(cfg.slo)
    if cfg.concurrency is not None and cfg.concurrency < 1:
        raise InputError(f"--concurrency must be at least 1, got {cfg.concurrency}")
    if not cfg.url.startswith(("http://", "https://")):
        raise InputError(f"URL {cfg.url!r} must start with http:// or https:// (e.g. http://127.0.0.1:8000/v1)")
    wl = cfg.build_workload()
    key = os.environ.get(cfg.api_key_env) if cfg.api_key_env else None
    if cfg.api_key_env and key is None:
        raise InputError(f"--api-key-env {cfg.api_key_env}: that environment variable is not set")
    ep, notes = asyncio.run(probe(Endpoint(cfg.url.rstrip("/"), cfg.model, cfg.api, cfg.timeout_s, key,
                                           cfg.ignore_eos)))
    inputs = asdict(cfg) | {"model": ep.model, "ignore_eos": ep.ignore_eos}
    registry = registry or Registry()
    run_id = registry.new_run_id("bench", inputs)
    folder = run_folder(out_dir, run_id)
    records: list[RequestRecord] = []
    if on_start:
        on_start(len(wl))
    interrupted = False
    wall = 0.0
    try:
        wall = asyncio.run(replay(ep, wl, ReplayOptions(cfg.concurrency, cfg.honour_arrivals, cfg.seed), records,
                                  on_done))
    except KeyboardInterrupt:
        interrupted = True
        notes.append("the run was interrupted; requests not finished are recorded as failed")
    finally:
        for rec in records:
            if rec.status == "pending":
                rec.status, rec.error = "failed", "interrupted: the run stopped before this request finished"
        for i in range(len(records), len(wl)):
            records.append(RequestRecord(i, float(wl.arrival_s[i]), int(wl.input_tokens[i]), int(wl.output_tokens[i]),
                                         status="failed", error="not sent: the run stopped before its arrival"))
        if not wall:
            wall = max((r.done_s for r in records if r.done_s == r.done_s), default=0.0)
        context = BenchContext(workload=wl.describe(), endpoint=ep.base_url, model=ep.model,
                               ignore_eos=ep.ignore_eos, notes=tuple(notes))
        summary = replace(bench_summary(records, slos, wall, wl), context=context)
        published = summary.to_json()
        write_bench_records(folder, records)
        write_text_atomic(folder / "summary.json", json.dumps(published, indent=2, sort_keys=True, default=str) + "\n")
        write_text_atomic(folder / "config.json", json.dumps(inputs, indent=2, sort_keys=True) + "\n")
        report = write_bench_report(folder / "report.html", records, summary, inputs, notes)
        registry.add(run_id, "bench", f"bench {ep.model} at {ep.base_url}, {cfg.workload}", inputs, published,
                     folder, report)
    return BenchRun(run_id, cfg, summary, records, folder, report, notes, interrupted)


@dataclass(frozen=True, slots=True)
class ValidateRun:
    run_id: str
    result: ValidationResult
    summary: dict[str, Any]
    out_dir: Path


def run_validate(model: str, *, out_dir: Path | None = None, registry: Registry | None = None,
                 **options: Any) -> ValidateRun:
    """Time the model, then write points.csv and summary.json and record a ``validate`` run (calibrate reads it)."""
    from inferplan.measure.validate import run_validation

    registry = registry or Registry()
    result = run_validation(model, **options)
    inputs = {"model": model} | {k: (str(v) if isinstance(v, Path) else v) for k, v in options.items()
                                 if k not in ("progress", "profile")}
    inputs["profile_source"] = result.profile_source
    summary = {"model": result.model, "layers": result.layers, "dtype": result.dtype, "device": result.device,
               "median_ape_pct": result.median_ape_pct, "num_points": len(result.points),
               "speed_vs_profile": result.speed_vs_profile, "backend": result.backend,
               "points": [p.as_dict() for p in result.points]}
    run_id = registry.new_run_id("validate", inputs)
    folder = run_folder(out_dir, run_id)
    header = "phase,batch,tokens,context,measured_s,predicted_s,ape_pct\n"
    body = "".join(f"{p.phase},{p.batch},{p.tokens},{p.context},{p.measured_s:.6f},{p.predicted_s:.6f},"
                   f"{p.ape_pct:.2f}\n" for p in result.points)
    write_text_atomic(folder / "points.csv", header + body)
    write_text_atomic(folder / "summary.json", json.dumps(summary, indent=2) + "\n")
    registry.add(run_id, "validate", f"validate {result.model} on {result.device}", inputs,
                 {k: v for k, v in summary.items() if k != "points"} | {"points": summary["points"]}, folder, None)
    return ValidateRun(run_id, result, summary, folder)
