"""The planning pipeline: prune -> screen -> capacity by simulation -> fleet MILP -> verify.

1. Enumerate replica configurations that fit in memory (``space``).
2. Rank them with the analytical model and keep the best few per device type (``analytic``).
3. Measure each survivor's capacity per request-size bucket by simulation with bisection
   (``capacity``), in parallel processes, cached in the run registry.
4. Choose the cheapest fleet over types and buckets with a MILP (``fleet``).
5. Simulate the whole workload on that fleet, routing buckets as planned. If an SLO is
   missed, add a replica to the busiest type and simulate again; a plan is reported as
   meeting the SLOs only if this final simulation met every one.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from inferplan.errors import InputError
from inferplan.perf.deployment import Deployment
from inferplan.perf.profile import DeviceProfile
from inferplan.plan.analytic import estimate, screen
from inferplan.plan.autoscale import AutoscaleResult, plan_autoscale_fleet
from inferplan.plan.capacity import Bucket, CapacityJob, cached_capacity
from inferplan.plan.colocation import (
    SeparateFleet,
    by_priority,
    check_deadlines,
    make_buckets,
    peak_factor,
    separate_fleets,
)
from inferplan.plan.defaults import DEFAULT_DEVICES, DEFAULT_SLO
from inferplan.plan.executors import run_all
from inferplan.plan.fleet import Fleet, solve_fleet
from inferplan.plan.margins import SloMargin, calibrated, slo_margins, tightened
from inferplan.plan.pools import Evaluated, ReplicaType, pick_survivors
from inferplan.plan.power_budget import OBJECTIVES, FleetObjective, PowerBudget, capped_types
from inferplan.plan.space import (
    OWNED_ENERGY_PRICE,
    QualityBudget,
    SearchSpace,
    enumerate_candidates,
    host_tier_ratios,
)
from inferplan.plan.speculation import speculation_options
from inferplan.plan.verify import verify
from inferplan.sim.digest import RunDigest
from inferplan.sim.slo import SLO, parse_slos
from inferplan.sim.summary_types import Headline, Summary
from inferplan.specs.catalog import get_engine, get_model
from inferplan.specs.model import ModelSpec
from inferplan.specs.speculation import Speculation
from inferplan.store import Registry
from inferplan.workload.presets import WorkloadSpec
from inferplan.workload.request import Workload
from inferplan.workload.sessions import resent_tokens


@dataclass(frozen=True, slots=True, kw_only=True)
class PlanRequest(WorkloadSpec):
    model: str = "llama-3.1-8b"
    slo: str = DEFAULT_SLO
    devices: tuple[str, ...] = DEFAULT_DEVICES
    engines: tuple[str, ...] = ()  # serving engines to search (empty: each device's default engine)
    max_quality_loss_pct: float | None = 1.0
    allow_unknown_quality: bool = False
    buckets: int = 3
    survivors_per_device: int = 1
    probe_requests: int = 400
    executor: str = "local"
    disaggregation: str = "off"  # off | on | auto
    autoscale_window_s: float | None = None  # set: also plan replicas per window for time-varying load
    scale_down_delay_s: float = 300.0
    profile: str | None = None  # a DeviceProfile file for the device it names (from profile/calibrate)
    confidence: float | None = None  # plan each SLO to hold with this probability under the residuals
    energy_price_per_kwh: float = OWNED_ENERGY_PRICE  # what an owned device (no rental price) costs to run
    # speculative decoding: off, auto (every method the model has a drafter for) or a method; k and the
    # acceptance fixed where given (else k searched, the method's cited rate)
    spec: str = "off"
    spec_tokens: int | None = None
    spec_acceptance: str | None = None
    spec_draft: str | None = None
    power_budget_w: float | None = None  # the fleet's power at full load stays within this (None: no limit)
    objective: str = "cost"  # cost ($/h), energy (full-load power), or cost+energy (rental plus electricity)


@dataclass(kw_only=True)
class PlanResult:
    """What a plan found: the searched space, the chosen fleet and its verification, by name."""

    request: PlanRequest
    workload: Workload
    slos: tuple[SLO, ...]
    buckets: list[Bucket]
    num_candidates: int
    screen_s: float
    screened: list[Evaluated]
    survivors: list[Evaluated]  # per replica type, with its measured capacity per bucket
    fleet: Fleet
    types: list[ReplicaType]  # what fleet.replicas counts
    verified: bool
    summary: Summary
    adjustments: list[str] = field(default_factory=list)
    single_type_costs: dict[str, float] = field(default_factory=dict)
    capacity_used: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))  # (types, buckets) after repairs
    router: str = "least-outstanding"  # the router the verified simulation used
    router_results: dict[str, Headline] = field(default_factory=dict)  # every router tried, last attempt
    mode: str = "aggregated"  # aggregated | disaggregated | mixed
    mode_costs: dict[str, float] = field(default_factory=dict)
    mode_verified: dict[str, bool] = field(default_factory=dict)
    mode_fleets: dict[str, list[str]] = field(default_factory=dict)  # each mode's fleet: "N x type" per type
    autoscale: AutoscaleResult | None = None
    autoscale_config: str = ""
    margins: list[SloMargin] = field(default_factory=list)  # each SLO asked for: room left and P(it holds)
    planned_for: list[str] = field(default_factory=list)  # --confidence: what each SLO was planned as
    context_tokens: int = 8192  # p99 request length the configurations were sized for
    # online classes beside offline ones: the fleet each would need alone ("online", "offline")
    separate: dict[str, SeparateFleet] = field(default_factory=dict)
    verification: RunDigest | None = None  # the chosen fleet's verification run, for its charts


def _contexts(wl: Workload, limit: int) -> tuple[int, int]:
    """(p99 request length: what the configurations are sized for, the longest: what llama.cpp's slots hold)."""
    lengths = wl.input_tokens + wl.output_tokens
    return int(min(np.percentile(lengths, 99), limit)), int(min(lengths.max(), limit))


def plan(req: PlanRequest, *, registry: Registry | None = None, progress: Callable[[str], None] | None = None,
         workload: Workload | None = None) -> PlanResult:
    """The cheapest verified fleet for ``req`` (``workload``: this one instead of the request's). For online
    classes beside offline ones, also the fleets each would need alone (``PlanResult.separate``)."""
    say = progress or (lambda _msg: None)
    model = get_model(req.model)
    asked, slos, planned_for, speculative = _objectives(req, model)
    wl = req.build_workload() if workload is None else workload
    buckets, bucket_of = make_buckets(wl, req.buckets)
    budget = QualityBudget(req.max_quality_loss_pct, req.allow_unknown_quality)
    context, longest = _contexts(wl, model.max_position_embeddings)

    # 1-2. enumerate and screen
    say("screening candidates")
    t0 = time.perf_counter()
    mean_in, mean_out = float(wl.input_tokens.mean()), float(wl.output_tokens.mean())
    profile = DeviceProfile.load(Path(req.profile)) if req.profile else None
    space = SearchSpace(devices=req.devices, engines=req.engines, speculation=speculative,
                        host_kv_ratio=host_tier_ratios(wl.all_sessions))
    candidates = enumerate_candidates(model, space, budget, context_tokens=context, longest_tokens=longest,
                                      profile=profile, energy_price=req.energy_price_per_kwh,
                                      prefix_caching=wl.shares_prefixes)
    fresh = float((wl.input_tokens - resent_tokens(wl)).mean())  # a turn prefills what its session has not sent
    screened = [(Evaluated(c, est), d) for c, d, est in screen(candidates, mean_in, mean_out, slos, fresh_input=fresh)]
    screen_s = time.perf_counter() - t0
    if not screened:
        raise InputError(
            f"{model.name} fits none of {', '.join(req.devices)} (with the allowed formats"
            f"{' under ' + ', '.join(req.engines) if req.engines else ''}) for {context:,}-token "
            f"requests; try more devices (--devices h100-sxm,h200,b200), a larger --max-quality-loss, "
            f"or `inferplan fit {model.name} DEVICE --all-formats`"
        )
    feasible = [(e, d) for e, d in screened if e.estimate.feasible]
    if not feasible:
        best = min(screened, key=lambda ed: ed[0].estimate.ttft_s)
        raise InputError(
            f"no configuration meets {', '.join(map(str, slos))}: the nearest is {best[0].candidate.describe()} "
            f"with a single-request TTFT of {best[0].estimate.ttft_s * 1e3:.0f} ms and TPOT of "
            f"{best[0].estimate.tpot_s * 1e3:.1f} ms; relax the SLOs or add faster devices"
        )
    survivors = pick_survivors(feasible, req.devices, wl.mean_rate, req.survivors_per_device)

    # 3-5. per mode: capacity by simulation, fleet MILP, verification by simulation
    outcomes = _plan_modes(survivors, req, wl, slos, buckets, bucket_of, registry, say)
    chosen = min(outcomes, key=lambda o: (not o.verified, o.fleet.cost_per_hour))
    result = PlanResult(request=req, workload=wl, slos=slos, buckets=buckets, num_candidates=len(screened),
                        screen_s=screen_s, screened=[e for e, _ in screened], survivors=chosen.measured,
                        fleet=chosen.fleet, types=chosen.types, verified=chosen.verified, summary=chosen.summary,
                        adjustments=chosen.adjustments, single_type_costs=chosen.singles,
                        capacity_used=chosen.capacity_used, router=chosen.router, router_results=chosen.routers,
                        mode=chosen.mode, verification=chosen.checked,
                        mode_costs={o.mode: o.fleet.cost_per_hour for o in outcomes},
                        mode_verified={o.mode: o.verified for o in outcomes},
                        mode_fleets={o.mode: o.describe_fleet() for o in outcomes}, context_tokens=context,
                        planned_for=planned_for)
    fleet_kinds = [(t.dep.device.kind, t.dep.serving_engine.name)
                   for t, n in zip(chosen.types, chosen.fleet.replicas, strict=True) if n]
    result.margins = slo_margins(chosen.summary, asked, fleet_kinds)
    if req.autoscale_window_s:
        say("planning replicas per window (autoscaling)")
        if chosen.mode != "aggregated":
            raise InputError("--autoscale plans aggregated replicas; use it with --disaggregation off")
        result.autoscale, result.autoscale_config = _autoscale(req, wl, slos, result, bucket_of)
    if workload is None:
        result.separate = separate_fleets(req, wl, lambda part: plan(req, registry=registry, progress=say,
                                                                     workload=part), say)
    return result


def _plan_modes(survivors: list[tuple[Evaluated, Deployment]], req: PlanRequest, wl: Workload,
                slos: tuple[SLO, ...], buckets: list[Bucket], bucket_of: np.ndarray, registry: Registry | None,
                say: Callable[[str], None]) -> list[_Outcome]:
    """Per mode (aggregated, disaggregated, and with --disaggregation auto a mix of both when the program
    picks one): capacities by simulation, the fleet program, verification."""
    modes = {"off": ("aggregated",), "on": ("disaggregated",), "auto": ("aggregated", "disaggregated")}
    if req.disaggregation not in modes:
        raise InputError(f"--disaggregation must be off, on or auto, got '{req.disaggregation}'")
    check_deadlines(wl, [d for _, d in survivors])
    outcomes = []
    measured: dict[str, tuple[list[ReplicaType], np.ndarray]] = {}
    for mode in modes[req.disaggregation]:
        types = _types_for(mode, survivors)
        if req.power_budget_w is not None and mode == "aggregated":
            types += capped_types(types)
        caps = _measure_types(mode, types, req, slos, buckets, registry, say)
        measured[mode] = types, caps
        outcomes.append(_fleet_for(mode, types, caps, req, wl, slos, buckets, bucket_of, say))
    if len(measured) == 2:  # auto: one program over both kinds, kept only if it mixes them
        (agg, agg_caps), (dis, dis_caps) = measured["aggregated"], measured["disaggregated"]
        types, caps = agg + dis, np.vstack([agg_caps, dis_caps])
        prices = np.array([t.price_per_hour for t in types])
        mix = solve_fleet(np.array([b.rate_per_s for b in buckets]), caps.T, prices,
                          tiebreak=np.array([t.tiebreak for t in types]))
        if len({types[c].aggregated for c, n in enumerate(mix.replicas) if n}) == 2:
            outcomes.append(_fleet_for("mixed", types, caps, req, wl, slos, buckets, bucket_of, say))
    return outcomes


def _objectives(req: PlanRequest, model: ModelSpec) -> tuple[tuple[SLO, ...], tuple[SLO, ...], list[str],
                                                              tuple[Speculation | None, ...]]:
    """(the SLOs asked for, the SLOs to plan for, how --confidence changed them, the speculative settings to
    search), with the request's names checked before the workload is built."""
    asked = parse_slos(req.slo)
    if not asked:
        raise InputError("the planner needs at least one SLO, e.g. --slo ttft_p90=2s,tpot_p90=100ms")
    for name in req.engines:
        get_engine(name)
    if req.objective not in OBJECTIVES:
        raise InputError(f"--objective must be one of {', '.join(OBJECTIVES)}, got '{req.objective}'")
    if req.power_budget_w is not None and not req.power_budget_w > 0:
        raise InputError(f"--power-budget must be a positive number of watts, got {req.power_budget_w:g}")
    if req.energy_price_per_kwh < 0:
        raise InputError(f"--energy-price must be 0 or more USD per kWh (got {req.energy_price_per_kwh:g})")
    speculative = speculation_options(model, req.spec, k=req.spec_tokens, acceptance=req.spec_acceptance,
                                      draft=req.spec_draft, seed=req.seed)
    slos, notes = (asked, []) if req.confidence is None else \
        tightened(asked, calibrated(req.devices, req.engines), req.confidence)
    return asked, slos, notes, speculative


DISAGG_UNITS = ((1, 1), (1, 2))  # (prefill, decode) replicas per disaggregated unit


@dataclass
class _Outcome:
    mode: str
    types: list[ReplicaType]
    measured: list[Evaluated]
    fleet: Fleet
    verified: bool
    summary: Summary
    adjustments: list[str]
    singles: dict[str, float]
    router: str
    routers: dict[str, Headline]
    capacity_used: np.ndarray  # (types, buckets): measured, lowered by repairs
    checked: RunDigest | None = None  # the verification run's latency distributions and time series

    def describe_fleet(self) -> list[str]:
        return [f"{n} x {t.label()}" for t, n in zip(self.types, self.fleet.replicas, strict=True) if n]


def _types_for(mode: str, survivors: list[tuple[Evaluated, Deployment]]) -> list[ReplicaType]:
    """Aggregated: every survivor. Disaggregated: units of the two most cost-efficient survivors without a host
    KV tier (vLLM's P/D servers already run the NIXL connector), each alone and each prefilling for the other
    (DistServe: the pools may use different devices)."""
    if mode == "aggregated":
        return [ReplicaType(e, d) for e, d in survivors]
    untiered = (ed for ed in survivors if not ed[1].limits.cpu_kv_cache_gib)
    best = sorted(untiered, key=lambda ed: ed[0].estimate.dollars_per_rate)[:2]
    out = [ReplicaType(e, d, u) for e, d in best for u in DISAGG_UNITS]
    for (pe, pd), (de, dd) in itertools.permutations(best, 2):
        # the decode pool must read the KV layout the prefill pool wrote, with the same engine
        if pd.kv.name == dd.kv.name and pe.candidate.engine == de.candidate.engine:
            out += [ReplicaType(de, dd, u, pe, pd) for u in DISAGG_UNITS]
    return out


def _measure_types(mode: str, types: list[ReplicaType], req: PlanRequest, slos: tuple[SLO, ...],
                   buckets: list[Bucket], registry: Registry | None, say: Callable[[str], None]) -> np.ndarray:
    """Capacity (req/s) of each type on each bucket, by simulation: (types, buckets). This process owns the
    registry: searches it holds are not run again, and each result is recorded as it comes back, so workers
    (processes here, a Ray cluster's nodes) need no access to it and an interrupted plan resumes."""
    jobs = []
    for t in types:
        for bk in buckets:
            guess = estimate(t.dep, float(bk.input_tokens.mean()), float(bk.output_tokens.mean()), slos).rate_per_s
            jobs.append(CapacityJob(dep=t.dep, bucket=bk, slos=slos, guess=max(guess, 0.05) * max(t.unit[1], 1),
                                    num_requests=req.probe_requests, seed=req.seed, unit=t.unit,
                                    prefill_dep=t.prefill_dep))
    keys = [job.key() for job in jobs] if registry is not None else []
    caps: list[float | None] = [cached_capacity(registry, k) for k in keys] if registry else [None] * len(jobs)
    todo = [i for i, c in enumerate(caps) if c is None]
    kept = f", {len(jobs) - len(todo)} of {len(jobs)} from the registry" if len(todo) < len(jobs) else ""
    say(f"{mode}: capacity of {len(types)} configurations on {len(buckets)} buckets{kept}")

    def record(k: int, cap: float) -> None:
        caps[todo[k]] = cap
        if registry is not None:
            registry.cache_put(keys[todo[k]], cap)

    run_all(CapacityJob.run, [jobs[i] for i in todo], executor=req.executor, size=CapacityJob.expected_cost,
            on_result=record)
    return np.array(caps, dtype=float).reshape(len(types), len(buckets))


def _fleet_for(mode: str, types: list[ReplicaType], caps: np.ndarray, req: PlanRequest, wl: Workload,
               slos: tuple[SLO, ...], buckets: list[Bucket], bucket_of: np.ndarray,
               say: Callable[[str], None]) -> _Outcome:
    """The cheapest fleet of these types (MILP), verified by simulating the whole workload under each
    router worth trying, and repaired until one meets every SLO (or attempts run out). Classes of different
    priority (chat beside batch) are served with the engines' priority scheduling, where they have it."""
    if wl.mixes_priorities:
        types = [by_priority(t) for t in types]
    measured = [Evaluated(t.decode.candidate, t.decode.estimate, tuple(float(c) for c in caps[i]))
                for i, t in enumerate(types)]
    say(f"{mode}: solving the fleet")
    rates = np.array([b.rate_per_s for b in buckets])
    dollars = np.array([t.price_per_hour for t in types])
    if (caps.max(axis=0) <= 0).any():
        raise InputError(f"no {mode} configuration meets {', '.join(map(str, slos))} for some request sizes; "
                         "relax the SLOs or add faster devices")
    penalty = np.array([t.tiebreak for t in types])
    objective = FleetObjective(req.objective, dollars, np.array([t.idle_w for t in types]),
                               np.array([t.power_w for t in types]), req.energy_price_per_kwh)
    power = PowerBudget(objective.busy_w, req.power_budget_w, objective)
    fleet = power.solve(rates, caps, penalty)
    adjustments = power.notes(rates, caps, penalty)
    singles = {}
    for i, t in enumerate(types):
        if (caps[i] > 0).all():
            singles[t.label()] = solve_fleet(rates, caps[i : i + 1].T, dollars[i : i + 1]).cost_per_hour
    replicas = list(fleet.replicas)
    derated = caps.copy()
    peak = 1.0 if req.autoscale_window_s else peak_factor(wl)  # (--autoscale plans each window at its own rates)
    router, routers = "", dict[str, Headline]()
    for attempt in range(8):
        say(f"{mode}: verifying the fleet by simulation (attempt {attempt + 1})")
        # once every router was tried, repairs re-try the best one (and the planned split, which they change)
        keep = (router, "planned") if len(routers) > 1 else None
        router, routers, summary, busiest, checked = verify(types, replicas, fleet.shares, wl, bucket_of, slos,
                                                            req.seed, req.executor, keep)
        if summary.slos_met:
            break
        missed = ", ".join(x.slo for x in summary.slos if not x.met) or "no SLO (rejections)"
        # First, once, where the load varies more than chance: the online buckets at the busiest window's rates
        peak_rates = np.where([b.offline for b in buckets], rates, rates * peak)  # offline rates: from deadlines
        if peak > 1 and (peaked := power.solve(peak_rates, derated, penalty)).replicas != tuple(replicas):
            rates, peak, fleet, replicas = peak_rates, 1.0, peaked, list(peaked.replicas)
            adjustments.append(f"re-planned for the busiest twelfth of the run ({rates.sum():.3g} req/s, not the "
                               f"mean) after the simulation missed {missed}")
            continue
        # Then two repairs; take the cheaper. (a) The short probes overestimated what the types in use sustain
        # on the whole workload: lower their capacities (10% at a time) until the program picks another fleet.
        # (b) Add one replica of the busiest type.
        used = [c for c, n in enumerate(replicas) if n]
        resolved = power.derated(rates, derated, used, penalty, replicas)
        grown = [n + (k == busiest) for k, n in enumerate(replicas)]
        if not power.fits(grown) and (resolved is None or list(resolved.replicas) == replicas):
            adjustments.append(f"stopped: no larger fleet fits the power budget; the simulation missed {missed}")
            break
        if resolved is not None and list(resolved.replicas) != replicas and (
                objective.score(resolved, list(resolved.replicas), rates, derated)
                < objective.score(fleet, grown, rates, derated) or not power.fits(grown)):
            fleet, replicas = resolved, list(resolved.replicas)
            names = ", ".join(types[u].label() for u in used)
            adjustments.append(f"re-planned with less capacity assumed for {names} "
                               f"after the simulation missed {missed}")
        else:
            replicas = grown
            adjustments.append(f"added one {types[busiest].label()} after the simulation missed {missed}")
    final = Fleet(tuple(replicas), fleet.shares, float(dollars @ np.array(replicas)))
    return _Outcome(mode, types, measured, final, bool(summary.slos_met), summary, adjustments, singles,
                    router, routers, derated, checked)


def _autoscale(req: PlanRequest, wl: Workload, slos: tuple[SLO, ...], result: PlanResult,
               bucket_of: np.ndarray) -> tuple[AutoscaleResult, str]:
    """Replicas of each planned type per window, from the capacities the verified plan settled on
    (probe capacities, lowered where verification had to: per-bucket probes add up optimistically
    on a mixed stream), routed as the plan was verified."""
    assert req.autoscale_window_s is not None
    deps = [t.dep for t in result.types]
    labels = [t.label() for t in result.types]
    auto = plan_autoscale_fleet(deps, labels, result.capacity_used.T, bucket_of, wl, slos,
                                window_s=req.autoscale_window_s, scale_down_delay_s=req.scale_down_delay_s,
                                seed=req.seed, router=result.router)
    return auto, " + ".join(auto.types)
