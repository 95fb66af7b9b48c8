"""CLI verb `plan`: the cheapest deployment that meets the SLOs, verified by simulation, with launch files."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from inferplan.api import DEFAULT_DEVICES, DEFAULT_SLO, InputError
from inferplan.cli import options
from inferplan.cli.app import app
from inferplan.cli.output import ProgressReport, check_out_dir, emit_json, interrupted, out, print_table
from inferplan.cli.plan_fleet import plan_fleet

if TYPE_CHECKING:
    from inferplan.api import AutoscaleResult, PlanRequest, PlanResult, PlanRun


EPILOG = (
    "Examples:\n\n"
    "  inferplan plan\n\n"
    "  inferplan plan llama-3.1-70b --workload ../shared/data/traces/azure_llm_2023_conv.csv --rate-scale 4 "
    "--slo ttft_p90=2s,tpot_p90=80ms --devices h100-sxm,a100-80gb,l40s,l4 --max-quality-loss 1\n\n"
    "  inferplan plan qwen3-32b --workload chat --rate 40 --slo ttft_p99=1.5s,tpot_p90=60ms --json --out plans\n\n"
    "  inferplan plan llama-3.1-8b --workload diurnal-chat --autoscale --window 15m\n\n"
    "  inferplan plan llama-3.1-70b --devices h100-sxm,h200 --engine vllm,trtllm --confidence 0.9\n\n"
    "  inferplan plan llama-3.1-8b --workload chat --rate 4 --slo ttft_p90=1s,tpot_p90=8ms --spec auto"
)


@app.command("plan", epilog=EPILOG)
def plan_cmd(
    model: options.Model = "llama-3.1-8b",
    workload: options.Workloads = None,
    rate: options.Rate = None,
    rate_scale: options.RateScale = None,
    duration: options.Duration = None,
    num_requests: options.NumRequests = None,
    slo: Annotated[str, typer.Option(help="objectives, e.g. ttft_p90=2s,tpot_p90=100ms")] = DEFAULT_SLO,
    devices: Annotated[str, typer.Option(help="comma-separated device types to consider")] = ",".join(DEFAULT_DEVICES),
    engine: Annotated[str | None, typer.Option(help="comma-separated serving engines to search (vllm, sglang, "
                                                    "trtllm, llamacpp; default: each device's own)")] = None,
    max_quality_loss: Annotated[str, typer.Option(help="largest documented quality loss allowed, in percent "
                                                       "(1 or 1%)")] = "1",
    allow_unknown_quality: Annotated[bool, typer.Option("--allow-unknown-quality",
                                                        help="allow formats whose quality effect is unknown")] = False,
    buckets: Annotated[int, typer.Option(help="request-size buckets for the fleet program")] = 3,
    seed: options.Seed = 0,
    executor: Annotated[str, typer.Option(help="local (process pool), serial, or ray (RAY_ADDRESS or a local "
                                                "instance; pip install 'inferplan[ray]')")] = "local",
    out_dir: options.OutDir = Path("inferplan-runs"),
    registry: options.RegistryPath = None,
    disaggregation: Annotated[str, typer.Option(help="off, on (prefill/decode pools) or auto (the cheaper "
                                                     "verified of both)")] = "off",
    autoscale: Annotated[bool, typer.Option("--autoscale", help="also plan replicas per time window")] = False,
    window: Annotated[str, typer.Option(help="autoscaling window, e.g. 15m, 900s, 1h")] = "15m",
    scale_down_delay: Annotated[str, typer.Option(help="keep a replica this long after it is no longer needed")] = "5m",
    profile: Annotated[Path | None, typer.Option(help="device profile (from `inferplan profile` or `calibrate`) "
                                                 "for the device it names")] = None,
    confidence: Annotated[float | None, typer.Option(
        help="plan each SLO to hold with this probability under the model's calibration residuals "
             "(e.g. 0.9; `inferplan accuracy`)")] = None,
    energy_price: Annotated[float, typer.Option(
        help="USD per kWh: a device with no rental price (a laptop, a Pi, a box you own) is costed by the "
             "energy it draws at full power (default: 2024 U.S. residential average)")] = 0.1648,
    spec: Annotated[str, typer.Option("--spec", help="speculative decoding: off, auto (search every drafter the "
                                                     "model has, and off) or one method: eagle3, eagle, mtp, "
                                                     "ngram, draft")] = "off",
    spec_tokens: Annotated[int | None, typer.Option(help="speculative: drafted tokens per step (default: search "
                                                         "1-5)")] = None,
    spec_acceptance: options.SpecAcceptance = None, spec_draft: options.SpecDraft = None,
    session_turns: options.SessionTurns = None, think_time: options.ThinkTime = None,
    power_budget: Annotated[float | None, typer.Option(help="watts: the fleet's power at full load (each device's "
                                                       "peak) stays within it")] = None,
    objective: Annotated[str, typer.Option(help="what the fleet program minimizes: cost ($/h), energy (full-load "
                                                "power) or cost+energy (price plus power at --energy-price)")] = "cost",
    fleet: Annotated[Path | None, typer.Option(help="a fleet spec (YAML): several models, each with its workload "
                                                    "(tenants as classes) and SLOs, planned in turn")] = None,
    as_json: options.Json = False,
) -> None:
    """Find the cheapest fleet that meets the SLOs for MODEL under a workload, verified by simulation."""
    from inferplan.api import PlanRequest, Registry, join_workloads, run_plan

    mix = join_workloads(workload)
    if autoscale and duration is None and not Path(mix).exists():
        duration = 4 * parse_duration(window, "--window")  # a preset: simulate four windows
    req = PlanRequest(model=model, workload=mix, rate=rate, rate_scale=rate_scale, duration_s=duration,
                      num_requests=num_requests, seed=seed, slo=slo,
                      devices=_names(devices), engines=_names(engine or ""),
                      max_quality_loss_pct=parse_percent(max_quality_loss, "--max-quality-loss"),
                      allow_unknown_quality=allow_unknown_quality,
                      buckets=buckets, executor=executor, disaggregation=disaggregation,
                      autoscale_window_s=parse_duration(window, "--window") if autoscale else None,
                      scale_down_delay_s=parse_duration(scale_down_delay, "--scale-down-delay"),
                      profile=str(profile) if profile else None, confidence=confidence,
                      energy_price_per_kwh=energy_price, spec=spec, spec_tokens=spec_tokens,
                      spec_acceptance=spec_acceptance, spec_draft=spec_draft, session_turns=session_turns,
                      think_time_s=think_time, power_budget_w=power_budget, objective=objective)
    folder = check_out_dir(out_dir)
    reg = Registry(registry)
    if fleet is not None:
        if model != "llama-3.1-8b" or workload:
            raise InputError("--fleet names the models and their workloads; leave out MODEL and --workload")
        return plan_fleet(fleet, req, folder, reg, as_json=as_json)
    if not as_json:
        print_targets(req)
    keep = (f"capacity searches finished so far are cached in {reg.path}; run the same command again to "
            "resume from them")
    with interrupted(lambda: keep), ProgressReport("planning", quiet=as_json, counted=False) as bar:
        run = run_plan(req, out_dir=folder, registry=reg, progress=bar.say)
    _print_run(run, reg.path, as_json)


def _print_run(run: PlanRun, registry: Path, as_json: bool) -> None:
    """The plan (or its JSON), where it was recorded, and the files it wrote."""
    if as_json:
        emit_json(run.doc | {"run_id": run.run_id, "registry": str(registry)})
        return
    print_plan(run.result, run.doc)
    out.print(f"run {run.run_id} recorded in {registry}", soft_wrap=True)
    scaling = ", autoscaling.yaml" if (run.out_dir / "deploy" / "autoscaling.yaml").exists() else ""
    out.print(f"deploy files in {run.out_dir / 'deploy'} (launch.sh, kubernetes.yaml, routing.json{scaling})",
              soft_wrap=True)
    out.print(f"report: {run.report_path}", soft_wrap=True)


def print_targets(req: PlanRequest) -> None:
    """What the plan is for, before the work starts, so a wrong default is caught early."""
    from inferplan.api import OBJECTIVE_SAYS

    rate = f"{req.rate:g} req/s" if req.rate is not None else "the workload's own rate"
    if req.rate_scale is not None:
        rate += f" x {req.rate_scale:g}"
    quality = f"at most {req.max_quality_loss_pct:g}% documented quality loss" + (
        " (formats of unknown effect allowed)" if req.allow_unknown_quality
        else " (formats of unknown effect excluded)")
    goal = f"; minimizing {OBJECTIVE_SAYS.get(req.objective, req.objective)}" if req.objective != "cost" else ""
    out.print(f"planning {req.model} for workload {req.workload} at {rate}; SLOs {req.slo}; {quality}; "
              f"devices {', '.join(req.devices)}; engines {', '.join(req.engines) or 'each device default'}; "
              f"disaggregation {req.disaggregation}; speculative decoding {req.spec}"
              + (f"; each SLO planned to hold with probability {req.confidence:g}" if req.confidence else "")
              + goal, soft_wrap=True)


def _names(text: str) -> tuple[str, ...]:
    return tuple(n.strip() for n in text.split(",") if n.strip())


def print_plan(r: PlanResult, doc: dict[str, Any]) -> None:
    """The chosen fleet, why it won, the ranking behind it, and the verification."""
    from rich.table import Table

    from inferplan.api import router_attainment, usd

    t = Table(title=f"Chosen fleet for {r.request.model} - {usd(doc['cost_per_hour'])}/hour")
    for col in ("replicas", "device", "parallelism", "engine", "weights", "KV", "quality loss", "max_num_seqs",
                "batched tokens", "buckets served"):
        t.add_column(col)
    for p in doc["fleet"]:
        t.add_row(*_fleet_row(p))
    print_table(t)
    if r.mode == "aggregated":
        print_table(_ranking(r))
    s = r.summary
    verdict = "[green]verified[/]" if r.verified else "[red]NOT verified: the simulation missed an SLO[/]"
    wl = r.workload.describe()
    out.print(f"{verdict} by simulating all {s.num_requests:,} requests ({wl['name']}, {wl['mean_rate_per_s']:g} "
              f"req/s): TTFT p90 {_ms(s.ttft_s.p90, '{:,.0f}')} ms, TPOT p90 {_ms(s.tpot_s.p90, '{:,.1f}')} ms, "
              f"SLO attainment {s.slo_attainment:.1%}")
    for margin in r.margins:
        chance = ("no residuals to say how likely" if margin.probability is None
                  else f"holds with probability {margin.probability:.2f}")
        out.print(f"  {margin.slo}: simulated {margin.predicted_s * 1e3:,.1f} ms, margin {margin.margin_pct:.0f}%; "
                  f"{chance} ({margin.basis})", soft_wrap=True)
    for line in r.planned_for:
        out.print(f"  planned for: {line}", soft_wrap=True)
    _print_colocation(r)
    if not r.summary.classes and (box := one_box_capacity(doc)) is not None:
        out.print(box, soft_wrap=True)
    out.print(f"why this fleet: {doc['why_chosen']}", soft_wrap=True)
    budget = f" (budget {r.request.power_budget_w:,.0f} W)" if r.request.power_budget_w is not None else ""
    out.print(f"fleet power at full load: {doc['fleet_power_w']:,.0f} W{budget}; simulated energy "
              f"{_joules(doc['predicted']['energy_j_per_output_token'])} per output token")
    if len(r.router_results) > 1:
        out.print(f"router: {r.router} (SLO attainment by router: {router_attainment(r.router_results)})")
    if len(r.mode_costs) > 1:
        out.print("by mode: " + ", ".join(f"{m} {usd(c)}/h ({'verified' if r.mode_verified[m] else 'not verified'})"
                                           for m, c in r.mode_costs.items()) + f"; chose {r.mode}")
        for m, fleet in r.mode_fleets.items():
            if m != r.mode:
                out.print(f"  {m}: " + "; ".join(fleet))
    for a in r.adjustments:
        out.print(f"adjusted: {a}")
    out.print(f"searched {r.num_candidates:,} configurations ({r.num_candidates / max(r.screen_s, 1e-9):,.0f}/s), "
              f"simulated {len(r.survivors)}")
    if r.autoscale is not None:
        _print_autoscale(r.autoscale)


def _print_colocation(r: PlanResult) -> None:
    """Online beside offline classes: each class's verified figures, and the fleets they would need apart."""
    from inferplan.api import usd
    from inferplan.cli.render import print_classes

    if r.summary.classes:
        print_classes(r.summary)
    if len(r.separate) == 2:
        apart = sum(f.cost_per_hour for f in r.separate.values())
        each = " + ".join(f"{side} {usd(f.cost_per_hour)}/h ({'; '.join(f.fleet)}"
                          f"{'' if f.verified else ', not verified'})" for side, f in r.separate.items())
        saved = 100 * (1 - r.fleet.cost_per_hour / apart) if apart else 0.0
        out.print(f"served together: {usd(r.fleet.cost_per_hour)}/h; on separate fleets: {each} = {usd(apart)}/h; "
                  f"together {'saves' if saved >= 0 else 'costs'} {abs(saved):.0f}%", soft_wrap=True)


def one_box_capacity(doc: dict[str, Any]) -> str | None:
    """For a fleet of one replica (an edge box, a laptop): the rate of this workload's mix it holds at the SLOs,
    1 / sum(share_b / capacity_b) over the request buckets, and the conversations that means at once (Little's
    law with the mean end-to-end time simulated at the asked rate: a lower bound, E2E grows with load)."""
    fleet = doc["fleet"]
    if len(fleet) != 1 or fleet[0]["count"] != 1 or fleet[0]["disaggregated"]:
        return None
    caps, rates = fleet[0]["capacity_per_bucket_rps"], {b["name"]: b["rate_per_s"] for b in doc["buckets"]}
    total = sum(rates.values())
    if not total or any(caps.get(name, 0.0) <= 0 for name, rate in rates.items() if rate > 0):
        return None
    capacity = 1.0 / sum(rate / total / caps[name] for name, rate in rates.items() if rate > 0)
    users = capacity * (doc["predicted"]["e2e_s"]["mean"] or 0.0)
    return (f"one {fleet[0]['device']} holds up to {capacity:.3g} req/s of this workload at these SLOs: at least "
            f"{users:.3g} conversations at once (that rate x the mean end-to-end time simulated at the asked rate, "
            f"which only grows toward capacity)")


def _joules(x: float | None) -> str:
    return "-" if x is None else f"{x:.3g} J"


def _ms(x: float | None, fmt: str) -> str:
    return "-" if x is None else fmt.format(x * 1e3)


def _fleet_row(p: dict[str, Any]) -> list[str]:
    served = ", ".join(f"{k} ({v:.0%})" for k, v in p["bucket_shares"].items() if v > 0)
    count = str(p["count"]) if not p["disaggregated"] else (
        f"{p['count']} x ({p['prefill_replicas_per_unit']}P + {p['decode_replicas_per_unit']}D)")
    pre = p["prefill"]
    if pre and (pre["device"], pre["parallelism"], pre["weights"]) != (p["device"], p["parallelism"], p["weights"]):
        device, par, weights = (f"P {pre['device']} / D {p['device']}", f"{pre['parallelism']} / {p['parallelism']}",
                                f"{pre['weights']} / {p['weights']}")
    else:
        device, par, weights = p["device"], p["parallelism"], p["weights"]
    loss = "unknown" if p["quality_loss_pct"] is None else f"{p['quality_loss_pct']:.2f}%"
    return [count, device, par, p["engine"], weights, p["kv_cache"], loss, str(p["max_num_seqs"]),
            str(p["max_num_batched_tokens"]), served]


def _ranking(r: PlanResult) -> Any:
    from rich.table import Table

    ranked = Table(title="Configurations simulated, ranked by the cost of a fleet of that type alone "
                         "(from probe capacities, before verification)")
    for col in ("rank", "configuration", "capacity per bucket (req/s)", "single-type fleet $/h"):
        ranked.add_column(col)
    costs = r.single_type_costs
    order = sorted(r.survivors, key=lambda ev: costs.get(ev.candidate.describe(), float("inf")))
    for k, ev in enumerate(order, start=1):
        cost = costs.get(ev.candidate.describe())
        ranked.add_row(str(k), ev.candidate.describe(), ", ".join(f"{c:.2f}" for c in ev.capacity),
                       "-" if cost is None else f"{cost:.2f}")
    return ranked


def _print_autoscale(a: AutoscaleResult) -> None:
    auto = a.to_dict()
    by_type = "; ".join(f"{name}: {counts}" for name, counts in auto["replicas_per_window_by_type"].items())
    out.print(f"autoscaling in {auto['window_s']:g} s windows, replicas per window by type - {by_type}")
    out.print(f"autoscaled: replicas {auto['replicas_per_window']} - ${auto['cost_per_day']:,.2f}/day (SLO attainment "
              f"{a.auto_summary.slo_attainment:.1%}) vs static peak provisioning ({auto['static_replicas']} "
              f"replicas) - ${auto['static_cost_per_day']:,.2f}/day ({a.static_summary.slo_attainment:.1%}); "
              f"saving {auto['saving_pct']:.1f}%")
    if a.reactive is not None:
        react = auto["reactive"]
        pools = "; ".join(f"{p['min_replicas']}-{p['max_replicas']} x {p['type']}" for p in react["pools"])
        p = a.reactive.pools[0].policy
        out.print(f"reactive (HPA on {p.metric}, target {p.target:g} per replica, {p.metric_delay_s:g} s "
                  f"metric delay, {p.scale_down_window_s:g} s scale-down window, cold starts drawn around "
                  f"{p.cold_start_s:.0f} s (spread {p.cold_start_spread:g}); {pools}): "
                  f"${react['cost_per_day']:,.2f}/day (SLO attainment "
                  f"{a.reactive.summary.slo_attainment:.1%}), up to {react['max_replicas_used']} replicas, "
                  f"{react['scaling_events']} changes", soft_wrap=True)
        tried = "; ".join(f"{t['target']:g}: ${t['cost_per_day']:,.2f}/day, {t['slo_attainment'] or 0:.1%}"
                          f"{'' if t['slos_met'] else ' (missed)'}" for t in react["targets_tried"])
        if tried:
            out.print(f"  HPA targets tried (requests in flight per replica): {tried}", soft_wrap=True)
    out.print(f"recommendation: {auto['recommendation']}", soft_wrap=True)


def parse_percent(text: str, flag: str) -> float:
    """'1', '1%' or '0.5 %' -> a number of percent."""
    try:
        value = float(text.strip().rstrip("%").strip())
    except ValueError:
        raise InputError(f"{flag} '{text}': write a percentage such as 1 or 1%") from None
    if value < 0:
        raise InputError(f"{flag} must not be negative, got '{text}'")
    return value


def parse_duration(text: str, flag: str) -> float:
    """'15m', '900s', '1h', or plain seconds."""
    units = {"s": 1.0, "m": 60.0, "h": 3600.0}
    t = text.strip().lower()
    try:
        value = float(t[:-1]) * units[t[-1]] if t and t[-1] in units else float(t)
    except ValueError:
        raise InputError(f"{flag} '{text}': write a duration such as 15m, 900s or 1h") from None
    if value <= 0:
        raise InputError(f"{flag} must be positive, got '{text}'")
    return value
