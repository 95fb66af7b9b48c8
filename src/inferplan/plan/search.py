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

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from inferplan.errors import InputError
from inferplan.perf.deployment import Deployment
from inferplan.perf.profile import DeviceProfile
from inferplan.plan.analytic import Estimate, estimate
from inferplan.plan.autoscale import AutoscaleResult, plan_autoscale
from inferplan.plan.capacity import Bucket, capacity
from inferplan.plan.executors import run_all
from inferplan.plan.fleet import Fleet, solve_fleet
from inferplan.plan.space import DEFAULT_DEVICES, Candidate, QualityBudget, enumerate_candidates
from inferplan.sim.loop import SimResult, simulate
from inferplan.sim.policies import get_policy
from inferplan.sim.routers import PlannedRouter
from inferplan.sim.slo import SLO, parse_slos
from inferplan.sim.summary import summarize
from inferplan.specs.catalog import get_model
from inferplan.store import Registry
from inferplan.workload.presets import WorkloadSpec
from inferplan.workload.request import Workload

DEFAULT_SLO = "ttft_p90=2s,tpot_p90=100ms"


@dataclass(frozen=True, slots=True, kw_only=True)
class PlanRequest(WorkloadSpec):
    model: str = "llama-3.1-8b"
    slo: str = DEFAULT_SLO
    devices: tuple[str, ...] = DEFAULT_DEVICES
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


@dataclass(frozen=True, slots=True)
class Evaluated:
    candidate: Candidate
    estimate: Estimate
    capacity: tuple[float, ...] = ()  # per bucket, req/s


@dataclass
class PlanResult:
    request: PlanRequest
    workload: Workload
    slos: tuple[SLO, ...]
    buckets: list[Bucket]
    num_candidates: int
    screen_s: float
    screened: list[Evaluated]
    survivors: list[Evaluated]
    fleet: Fleet
    deployments: list[Deployment]
    verified: bool
    summary: dict[str, Any]
    adjustments: list[str] = field(default_factory=list)
    single_type_costs: dict[str, float] = field(default_factory=dict)
    sim: SimResult | None = None
    units: list[tuple[int, int]] = field(default_factory=list)  # per type: (prefill, decode); (0, 1) aggregated
    mode: str = "aggregated"
    mode_costs: dict[str, float] = field(default_factory=dict)
    mode_verified: dict[str, bool] = field(default_factory=dict)
    autoscale: AutoscaleResult | None = None
    autoscale_config: str = ""
    context_tokens: int = 8192  # p99 request length the configurations were sized for


def make_buckets(wl: Workload, k: int) -> tuple[list[Bucket], np.ndarray]:
    """Split requests into up to ``k`` size classes by prompt + output tokens (equal-count quantiles)."""
    size = wl.input_tokens + wl.output_tokens
    edges = np.unique(np.quantile(size, np.linspace(0, 1, k + 1)[1:-1])) if k > 1 else np.array([])
    which = np.searchsorted(edges, size, side="right")
    present = np.unique(which)
    span = max(wl.duration_s, 1e-9)
    buckets = []
    for b in present.tolist():
        idx = np.nonzero(which == b)[0]
        lo, hi = int(size[idx].min()), int(size[idx].max())
        buckets.append(Bucket(f"{lo}-{hi} tokens", wl.input_tokens[idx], wl.output_tokens[idx], idx.size / span))
    return buckets, np.searchsorted(present, which)


def _measure(job: tuple[Deployment, Bucket, tuple[SLO, ...], float, int, int, str, tuple[int, int]]) -> float:
    dep, bucket, slos, guess, n, seed, registry_path, unit = job
    return capacity(dep, bucket, slos, guess=guess, num_requests=n, seed=seed, unit=unit,
                    cache=Registry(Path(registry_path)) if registry_path else None)


def plan(req: PlanRequest, *, registry: Registry | None = None, progress: Callable[[str], None] | None = None) -> PlanResult:
    say = progress or (lambda _msg: None)
    model = get_model(req.model)
    slos = parse_slos(req.slo)
    if not slos:
        raise InputError("the planner needs at least one SLO, e.g. --slo ttft_p90=2s,tpot_p90=100ms")
    wl = req.build_workload()
    buckets, bucket_of = make_buckets(wl, req.buckets)
    budget = QualityBudget(req.max_quality_loss_pct, req.allow_unknown_quality)
    context = int(min(np.percentile(wl.input_tokens + wl.output_tokens, 99), model.max_position_embeddings))

    # 1-2. enumerate and screen
    say("screening candidates")
    t0 = time.perf_counter()
    screened: list[tuple[Evaluated, Deployment]] = []
    mean_in, mean_out = float(wl.input_tokens.mean()), float(wl.output_tokens.mean())
    profile = DeviceProfile.load(Path(req.profile)) if req.profile else None
    for cand, dep in enumerate_candidates(model, req.devices, budget, context_tokens=context, profile=profile):
        screened.append((Evaluated(cand, estimate(dep, mean_in, mean_out, slos)), dep))
    screen_s = time.perf_counter() - t0
    if not screened:
        raise InputError(
            f"{model.name} fits none of {', '.join(req.devices)} (with the allowed formats) for {context:,}-token "
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
    survivors: list[tuple[Evaluated, Deployment]] = []
    for device in req.devices:
        mine = sorted((ed for ed in feasible if ed[0].candidate.device == device),
                      key=lambda ed: ed[0].estimate.dollars_per_rate)
        survivors.extend(mine[: req.survivors_per_device])

    # 3-5. per mode: capacity by simulation, fleet MILP, verification by simulation
    modes = {"off": ("aggregated",), "on": ("disaggregated",), "auto": ("aggregated", "disaggregated")}
    if req.disaggregation not in modes:
        raise InputError(f"--disaggregation must be off, on or auto, got '{req.disaggregation}'")
    outcomes = []
    for mode in modes[req.disaggregation]:
        types = _types_for(mode, survivors)
        outcomes.append(_fleet_for(mode, types, req, wl, slos, buckets, bucket_of, registry, say))
    chosen = min(outcomes, key=lambda o: (not o.verified, o.fleet.cost_per_hour))
    result = PlanResult(req, wl, slos, buckets, len(screened), screen_s, [e for e, _ in screened], chosen.measured,
                        chosen.fleet, chosen.deployments, chosen.verified, chosen.summary, chosen.adjustments,
                        chosen.singles, chosen.sim, units=chosen.units, mode=chosen.mode,
                        mode_costs={o.mode: o.fleet.cost_per_hour for o in outcomes},
                        mode_verified={o.mode: o.verified for o in outcomes}, context_tokens=context)
    if req.autoscale_window_s:
        say("planning replicas per window (autoscaling)")
        if chosen.mode != "aggregated":
            raise InputError("--autoscale plans aggregated replicas; use it with --disaggregation off")
        result.autoscale, result.autoscale_config = _autoscale(req, wl, slos, survivors, chosen.singles, registry)
    return result


DISAGG_UNITS = ((1, 1), (1, 2))  # (prefill, decode) replicas per disaggregated unit


@dataclass
class _Outcome:
    mode: str
    measured: list[Evaluated]
    deployments: list[Deployment]
    units: list[tuple[int, int]]
    fleet: Fleet
    verified: bool
    summary: dict[str, Any]
    adjustments: list[str]
    singles: dict[str, float]
    sim: SimResult


def _types_for(mode: str, survivors: list[tuple[Evaluated, Deployment]]) -> list[tuple[Evaluated, Deployment,
                                                                                        tuple[int, int]]]:
    if mode == "aggregated":
        return [(e, d, (0, 1)) for e, d in survivors]
    best = sorted(survivors, key=lambda ed: ed[0].estimate.dollars_per_rate)[:2]  # the two most cost-efficient
    return [(e, d, u) for e, d in best for u in DISAGG_UNITS]


def _label(ev: Evaluated, unit: tuple[int, int]) -> str:
    text = ev.candidate.describe()
    return text if unit == (0, 1) else f"{unit[0]} prefill + {unit[1]} decode of [{text}]"


def _fleet_for(mode: str, types: list[tuple[Evaluated, Deployment, tuple[int, int]]], req: PlanRequest,
               wl: Workload, slos: tuple[SLO, ...], buckets: list[Bucket], bucket_of: np.ndarray,
               registry: Registry | None, say: Callable[[str], None]) -> _Outcome:
    say(f"{mode}: measuring capacity of {len(types)} configurations on {len(buckets)} request buckets")
    reg_path = str(registry.path) if registry else ""
    jobs = []
    for ev, dep, unit in types:
        for bk in buckets:
            guess = estimate(dep, float(bk.input_tokens.mean()), float(bk.output_tokens.mean()), slos).rate_per_s
            jobs.append((dep, bk, slos, max(guess, 0.05) * max(unit[1], 1), req.probe_requests, req.seed, reg_path,
                         unit))
    caps = np.array(run_all(_measure, jobs, executor=req.executor)).reshape(len(types), len(buckets))
    measured = [Evaluated(ev.candidate, ev.estimate, tuple(float(c) for c in caps[i]))
                for i, (ev, _, _) in enumerate(types)]
    say(f"{mode}: solving the fleet")
    rates = np.array([b.rate_per_s for b in buckets])
    prices = np.array([(d.price_per_hour or 0.0) * (u[0] + u[1]) for _, d, u in types])
    if (caps.max(axis=0) <= 0).any():
        raise InputError(f"no {mode} configuration meets {', '.join(map(str, slos))} for some request sizes; "
                         "relax the SLOs or add faster devices")
    fleet = solve_fleet(rates, caps.T, prices)
    singles = {}
    for i, (ev, _, unit) in enumerate(types):
        if (caps[i] > 0).all():
            singles[_label(ev, unit)] = solve_fleet(rates, caps[i : i + 1].T, prices[i : i + 1]).cost_per_hour
    replicas = list(fleet.replicas)
    adjustments: list[str] = []
    derated = caps.copy()
    for attempt in range(8):
        say(f"{mode}: verifying the fleet by simulation (attempt {attempt + 1})")
        sim = _simulate_fleet(types, replicas, fleet.shares, wl, bucket_of, req.seed)
        summary = summarize(sim, slos)
        if summary["slos_met"]:
            break
        missed = ", ".join(x["slo"] for x in summary["slos"] if not x["met"]) or "no SLO (rejections)"
        # Two repairs; take the cheaper. (a) The short probes overestimated what the types in use sustain
        # on the whole workload: lower their capacities (10% at a time) until the program picks another fleet.
        # (b) Add one replica of the busiest type.
        used = [c for c, n in enumerate(replicas) if n]
        for _ in range(10):  # derate until the program's answer changes
            derated[used] *= 0.9
            resolved = solve_fleet(rates, derated.T, prices)
            if list(resolved.replicas) != replicas:
                break
        c = _busiest_type(sim, types, replicas)
        grown = [n + (k == c) for k, n in enumerate(replicas)]
        if list(resolved.replicas) != replicas and resolved.cost_per_hour < float(prices @ np.array(grown)):
            fleet, replicas = resolved, list(resolved.replicas)
            names = ", ".join(_label(types[u][0], types[u][2]) for u in used)
            adjustments.append(f"re-planned with less capacity assumed for {names} after the simulation missed {missed}")
        else:
            replicas = grown
            adjustments.append(f"added one {_label(types[c][0], types[c][2])} after the simulation missed {missed}")
    final = Fleet(tuple(replicas), fleet.shares, float(prices @ np.array(replicas)))
    return _Outcome(mode, measured, [d for _, d, _ in types], [u for _, _, u in types], final,
                    bool(summary["slos_met"]), summary, adjustments, singles, sim)


def _simulate_fleet(types: list[tuple[Evaluated, Deployment, tuple[int, int]]], replicas: list[int],
                    shares: np.ndarray, wl: Workload, bucket_of: np.ndarray, seed: int) -> SimResult:
    if all(u == (0, 1) for _, _, u in types):
        deps, kinds = [], []
        for c, count in enumerate(replicas):
            deps += [types[c][1]] * count
            kinds += [c] * count
        router = PlannedRouter(bucket_of, _shares_for(shares, replicas), kinds)
        return simulate(wl, deps, get_policy("vllm"), router=router, seed=seed)
    prefill, decode = [], []
    for c, count in enumerate(replicas):
        _, dep, (p, d) = types[c]
        prefill += [dep] * (p * count)
        decode += [dep] * (d * count)
    return simulate(wl, decode, get_policy("vllm"), prefill=prefill, router="least-outstanding", seed=seed)


def _busiest_type(sim: SimResult, types: list[tuple[Evaluated, Deployment, tuple[int, int]]],
                  replicas: list[int]) -> int:
    """The type whose replicas were busiest in the simulation (its replicas appear in ``replicas`` order)."""
    owner = []
    disagg = not all(u == (0, 1) for _, _, u in types)
    if not disagg:
        for c, count in enumerate(replicas):
            owner += [c] * count
    else:
        for c, count in enumerate(replicas):
            owner += [c] * (types[c][2][0] * count)
        for c, count in enumerate(replicas):
            owner += [c] * (types[c][2][1] * count)
    busiest = max(range(len(sim.replicas)), key=lambda i: sim.replicas[i].busy_s)
    return owner[busiest]


def _autoscale(req: PlanRequest, wl: Workload, slos: tuple[SLO, ...], survivors: list[tuple[Evaluated, Deployment]],
               singles: dict[str, float], registry: Registry | None) -> tuple[AutoscaleResult, str]:
    """Autoscale the cheapest single-type fleet: its capacity on the whole mix, then replicas per window."""
    if not singles:
        raise InputError("no single replica type serves every request bucket, so there is nothing to autoscale")
    best = min(singles, key=lambda k: singles[k])
    ev, dep = next((e, d) for e, d in survivors if e.candidate.describe() == best)
    whole = Bucket("all", wl.input_tokens, wl.output_tokens, wl.mean_rate)
    cap = capacity(dep, whole, slos, guess=max(ev.estimate.rate_per_s, 0.05), num_requests=req.probe_requests,
                   seed=req.seed, cache=registry)
    if cap <= 0:
        raise InputError(f"{best} cannot meet the SLOs on the whole request mix, so it cannot be autoscaled")
    assert req.autoscale_window_s is not None
    return plan_autoscale(dep, wl, slos, capacity_rps=cap, window_s=req.autoscale_window_s,
                          scale_down_delay_s=req.scale_down_delay_s, seed=req.seed), best


def _shares_for(shares: np.ndarray, replicas: list[int]) -> np.ndarray:
    """Shares restricted to types that have replicas (a type added during verification keeps its share)."""
    out = shares.copy()
    out[:, [c for c, n in enumerate(replicas) if n == 0]] = 0.0
    sums = out.sum(axis=1, keepdims=True)
    normalised: np.ndarray = np.divide(out, sums, out=np.zeros_like(out), where=sums > 0)
    return normalised
