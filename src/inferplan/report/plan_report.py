"""A plan's plan.json and report.html (its deploy/ files are inferplan.deploy.fleet_files')."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import plotly.graph_objects as go

from inferplan.deploy.fleet_files import router_attainment
from inferplan.perf.deployment import Deployment
from inferplan.plan.search import PlanResult
from inferplan.report.html import Section, Table, figure_html, render
from inferplan.report.sim_report import (
    latency_section,
    slo_section,
    summary_section,
    timeseries_section,
    totals_section,
)
from inferplan.sim.digest import RunDigest

OBJECTIVE_SAYS = {"energy": "energy (idle power per replica, busy power for the load it carries)",
                   "cost+energy": "cost plus energy at the electricity price"}


def usd(x: float) -> str:
    """Dollars to the cent, or to three digits below a cent: an owned Pi or Jetson costs $0.00412/hour of energy."""
    return f"${x:.2f}" if x >= 0.01 or x == 0 else f"${x:.3g}"


def why_chosen(r: PlanResult) -> str:
    """One sentence: the chosen fleet against the cheapest alternative the search saw."""
    chosen = {r.types[c].label() for c, n in enumerate(r.fleet.replicas) if n}
    cost = r.fleet.cost_per_hour
    if r.request.objective != "cost":
        cheapest = min(r.single_type_costs.values(), default=cost)
        return (f"the least {OBJECTIVE_SAYS[r.request.objective]} of the fleets the program weighed "
                f"(--objective {r.request.objective}); it costs {usd(cost)}/hour against {usd(cheapest)}/hour "
                "for the cheapest fleet of one type")
    others = sorted((c, label) for label, c in r.single_type_costs.items() if label not in chosen)
    if not others:
        return f"the only configuration that meets the SLOs within the limits, at {usd(cost)}/hour"
    alt_cost, alt = others[0]
    if alt_cost > cost + 1e-9:
        return (f"{usd(cost)}/hour against {usd(alt_cost)}/hour for the runner-up ({alt}), "
                f"{100 * (alt_cost / cost - 1) if cost else 0:.0f}% more")
    mine = [r.types[c] for c, n in enumerate(r.fleet.replicas) if n]
    loss = max((t.dep.weights.quality_loss_pct() or 0.0) for t in mine)
    return (f"the runner-up ({alt}) costs the same ({usd(alt_cost)}/hour); at equal cost the planner prefers less "
            f"quality loss and fewer parts (this fleet: {loss:.2f}% documented loss)")



def _config_json(dep: Deployment) -> dict[str, Any]:
    return {
        "device": dep.device.name,
        "devices_per_replica": dep.num_devices,
        "tensor_parallel": dep.tp,
        "expert_parallel": dep.ep,
        "dp_attention": dep.dp_attention,
        "parallelism": dep.parallelism,
        "pipeline_parallel": dep.pp,
        "weights": dep.weights.name,
        "kv_cache": dep.kv.name,
        "engine": dep.serving_engine.name,
        "max_num_seqs": dep.limits.max_num_seqs,
        "max_num_batched_tokens": dep.limits.max_num_batched_tokens,
        "gpu_memory_utilization": dep.limits.gpu_memory_utilization,
        "slot_context": dep.limits.slot_context or None,  # llama.cpp: context per slot (-c = slots x this)
        "flash_attention": dep.limits.flash_attention,
        "quality_loss_pct": dep.weights.quality_loss_pct(),
        "quality_source": dep.weights.quality.source if dep.weights.quality else None,
        "kv_quality_loss_pct": dep.kv.quality_loss_pct(),
        "kv_quality_source": dep.kv.quality.source if dep.kv.quality else None,
        "speculative": dep.speculation.describe(dep.model.name) if dep.speculation else None,
        "cpu_kv_cache_gib": dep.limits.cpu_kv_cache_gib or None,  # a host tier for prefix blocks, per replica
    }


def fleet_json(r: PlanResult) -> list[dict[str, Any]]:
    """One entry per replica type in use; a disaggregated unit with another prefill configuration names it."""
    pools = []
    for c, count in enumerate(r.fleet.replicas):
        if count == 0:
            continue
        t = r.types[c]
        dep, ev, unit = t.dep, r.survivors[c], t.unit
        pools.append({
            "label": t.label(),
            **_config_json(dep),
            "count": count,
            "disaggregated": not t.aggregated,
            "prefill_replicas_per_unit": unit[0],
            "decode_replicas_per_unit": unit[1],
            "prefill": _config_json(t.prefill_deployment) if not t.aggregated else None,
            "price_per_replica_hour": t.price_per_hour,
            "bucket_shares": {b.name: round(float(r.fleet.shares[i, c]), 4) for i, b in enumerate(r.buckets)},
            "capacity_per_bucket_rps": {b.name: ev.capacity[i] for i, b in enumerate(r.buckets)},
        })
    return pools


def pareto(r: PlanResult) -> list[dict[str, Any]]:
    """Single-type fleets of every screened candidate: cost/hour, energy per token, and the SLO margin (the room
    left under the tightest TTFT or TPOT SLO by its predicted value); those no other beats on all three marked."""
    rate = r.workload.mean_rate if np.isfinite(r.workload.mean_rate) else 1.0
    rows: list[dict[str, Any]] = []
    for ev in r.screened:
        if not ev.estimate.feasible:
            continue
        dep_price = ev.estimate.dollars_per_rate * ev.estimate.rate_per_s
        replicas = int(np.ceil(rate / ev.estimate.rate_per_s))
        predicted = {"ttft": ev.estimate.ttft_s, "tpot": ev.estimate.tpot_s}
        margins = [1 - predicted[slo.metric] / slo.threshold_s for slo in r.slos if slo.metric in predicted]
        rows.append({"config": ev.candidate.describe(), "cost_per_hour": replicas * dep_price,
                     "ttft_s": ev.estimate.ttft_s, "tpot_s": ev.estimate.tpot_s, "replicas": replicas,
                     "energy_j_per_token": ev.estimate.energy_j_per_token,
                     "slo_margin_pct": 100 * min(margins) if margins else None,
                     "quality_loss_pct": ev.estimate.quality_loss_pct})
    points = [(float(x["cost_per_hour"]), float(x["energy_j_per_token"]), -float(x["slo_margin_pct"] or 0.0))
              for x in rows]
    for row, p in zip(rows, points, strict=True):
        row["pareto"] = not any(all(a <= b for a, b in zip(o, p, strict=True)) and o != p for o in points)
    return sorted(rows, key=lambda x: x["cost_per_hour"])


def verification_sections(d: RunDigest) -> list[Section]:
    """The verification run's latency CDFs and time series."""
    return [latency_section({"verification": d.latencies}, "Verification run: latency"),
            timeseries_section(d, "Verification run: over time")]


def fleet_table(pools: list[dict[str, Any]]) -> Table:
    """The chosen fleet's pools (``fleet_json``'s entries, as plan.json keeps them), one row each."""
    return Table(["replicas", "parallel", "engine", "weights", "KV", "max_num_seqs", "batched tokens",
                  "quality loss", "buckets served"],
                 [[f"{p['count']}x {p['device']}", f"TP{p['tensor_parallel']}", p["engine"], p["weights"],
                   p["kv_cache"], str(p["max_num_seqs"]), str(p["max_num_batched_tokens"]),
                   "-" if p["quality_loss_pct"] is None else f"{p['quality_loss_pct']:.2f}%",
                   ", ".join(f"{k}: {v:.0%}" for k, v in p["bucket_shares"].items() if v > 0)] for p in pools])


def slo_lines(r: PlanResult) -> list[dict[str, Any]]:
    return [{"slo": str(x), "metric": x.metric, "threshold_s": x.threshold_s} for x in r.slos]


def plan_json(r: PlanResult, artifacts: dict[str, str]) -> dict[str, Any]:
    keys = ("num_requests", "num_finished", "num_rejected", "ttft_s", "tpot_s", "itl_s", "e2e_s",
            "throughput_output_tokens_per_s", "goodput_requests_per_s", "slo_attainment", "cost_per_hour",
            "cost_per_million_output_tokens", "energy_j_per_output_token", "num_preemptions", "slos")
    predicted, trade_offs = r.summary.to_json(), pareto(r)
    return {
        "verified": r.verified,
        "cost_per_hour": r.fleet.cost_per_hour,
        "fleet_power_w": sum(t.power_w * n for t, n in zip(r.types, r.fleet.replicas, strict=True)),
        "power_budget_w": r.request.power_budget_w,
        "disaggregation": r.mode,
        "cost_per_hour_by_mode": r.mode_costs,
        "verified_by_mode": r.mode_verified,
        "fleet_by_mode": r.mode_fleets,
        "fleet": fleet_json(r),
        "router": r.router,
        "routers_simulated": {name: h.to_json() for name, h in r.router_results.items()},
        "predicted": {k: predicted[k] for k in keys},
        "adjustments": r.adjustments,
        "single_type_cost_per_hour": r.single_type_costs,
        "workload": r.workload.describe(),
        "buckets": [{"name": b.name, "rate_per_s": b.rate_per_s, "num_requests": int(b.input_tokens.shape[0])}
                    for b in r.buckets],
        "search": {"candidates": r.num_candidates, "screen_s": r.screen_s, "simulated": len(r.survivors)},
        "pareto_front": [p for p in trade_offs if p["pareto"]],
        "trade_offs": trade_offs,  # every screened configuration that meets the SLOs, the front marked
        "why_chosen": why_chosen(r),
        "slo": r.request.slo,
        "slo_lines": slo_lines(r),  # what the plan was sized for (--confidence: tightened)
        "slo_margins": [m.to_json() for m in r.margins],
        "confidence": r.request.confidence,
        "planned_for": r.planned_for,
        "artifacts": artifacts,
        "autoscale": None if r.autoscale is None else r.autoscale.to_dict() | {"config": r.autoscale_config},
        "classes": predicted.get("classes", []),
        "separate_fleets": {side: {"num_requests": f.num_requests, "cost_per_hour": f.cost_per_hour,
                                   "fleet": list(f.fleet), "verified": f.verified} for side, f in r.separate.items()},
    }


def write_plan_report(r: PlanResult, path: Path, inputs: dict[str, Any]) -> Path:
    pools = fleet_json(r)
    sections = [Section(
        "Chosen fleet",
        note=(f"${r.fleet.cost_per_hour:.2f}/hour; verified by simulating the whole workload: "
              f"{'yes' if r.verified else 'NO - it missed an SLO'}; router {r.router}"
              + (f" (SLO attainment by router: {router_attainment(r.router_results)})"
                 if len(r.router_results) > 1 else "")
              + ("; " + "; ".join(r.adjustments) if r.adjustments else "")),
        table=fleet_table(pools))]
    sections += [totals_section(r.summary), summary_section(r.summary)]
    slo = slo_section(r.summary)
    if slo:
        sections.append(slo)
    if r.verification is not None:
        sections += verification_sections(r.verification)
    cap_rows = [[ev.candidate.describe(), f"{ev.estimate.rate_per_s:.2f}", *[f"{c:.2f}" for c in ev.capacity],
                 f"${r.single_type_costs[ev.candidate.describe()]:.2f}"
                 if ev.candidate.describe() in r.single_type_costs else "-"]
                for ev in r.survivors]
    sections.append(Section("Measured capacity (requests/s per replica, by simulation)",
                            table=Table(["configuration", "analytical", *[b.name for b in r.buckets],
                                         "single-type fleet $/h"],
                                        cap_rows)))
    if r.autoscale is not None:
        a = r.autoscale.to_dict()
        auto, static = r.autoscale.auto_summary, r.autoscale.static_summary
        rows = [["autoscaled", ", ".join(map(str, a["replicas_per_window"])), f"${a['cost_per_day']:,.2f}",
                 f"{auto.slo_attainment:.1%}", "yes" if auto.slos_met else "no"],
                ["static peak", str(a["static_replicas"]), f"${a['static_cost_per_day']:,.2f}",
                 f"{static.slo_attainment:.1%}", "yes" if static.slos_met else "no"]]
        sections.append(Section(
            f"Autoscaling ({a['window_s']:g} s windows, {r.autoscale_config})",
            note=(f"cold start {a['cold_start_s']:.0f} s median (pod placed, weights at the host load bandwidth, "
                  "engine start-up; the reactive autoscaler draws each start around it), "
                  f"scale-down delay {a['scale_down_delay_s']:g} s; saving {a['saving_pct']:.1f}% "
                  "against static peak provisioning"),
            table=Table(["provisioning", "replicas", "cost per day", "SLO attainment", "SLOs met"], rows)))
    front = pareto(r)
    slos, chosen = slo_lines(r), {p["label"] for p in pools}
    front_rows = [[p["config"], str(p["replicas"]), f"${p['cost_per_hour']:.2f}", f"{p['energy_j_per_token']:.3f}",
                   _pct_or_dash(p["slo_margin_pct"], ".0f"), f"{p['ttft_s'] * 1e3:.0f}", f"{p['tpot_s'] * 1e3:.1f}",
                   _pct_or_dash(p["quality_loss_pct"], ".2f")] for p in front if p["pareto"]]
    sections.append(Section("Trade-offs", note="Analytical estimates for every screened configuration; the table "
                            "lists the Pareto front over cost, energy per token and SLO margin (the room left "
                            "under the tightest TTFT or TPOT SLO).",
                            table=Table(["configuration", "replicas", "$/hour", "J/token", "SLO margin", "TTFT ms",
                                         "TPOT ms", "quality loss"], front_rows),
                            figures=tradeoff_figures(front, chosen, slos)))
    return render(path, f"Plan: {r.request.model}, {r.workload.name}", f"SLOs {r.request.slo}; "
                  f"{r.num_candidates} configurations screened, {len(r.survivors)} simulated", sections, inputs)


AXES = (("ttft_s", "TTFT", "ms", 1e3), ("tpot_s", "TPOT", "ms", 1e3), ("quality_loss_pct", "quality loss", "%", 1.0))


def tradeoff_figures(rows: list[dict[str, Any]], chosen: set[str], slos: list[dict[str, Any]]) -> list[str]:
    """Every screened configuration's single-type fleet: cost against predicted TTFT, TPOT (the SLO drawn as
    a line) and documented quality loss, colored by energy per token, the Pareto front outlined and the
    chosen configuration starred."""
    return [_tradeoff_figure(rows, chosen, [s for s in slos if f"{s['metric']}_s" == key], key, title, unit, scale)
            for key, title, unit, scale in AXES]


def _tradeoff_figure(rows: list[dict[str, Any]], chosen: set[str], slos: list[dict[str, Any]], key: str, title: str,
                     unit: str, scale: float) -> str:
    fig = go.Figure()
    known = [p for p in rows if p.get(key) is not None]  # a format of unknown quality has no point there
    for name, pick, marker in (
            ("screened", lambda p: not p["pareto"], {"size": 6, "opacity": 0.55}),
            ("Pareto front", lambda p: p["pareto"], {"size": 9, "line": {"width": 1.5, "color": "#1d2430"}}),
            ("chosen", lambda p: p["config"] in chosen, {"size": 18, "symbol": "star", "color": "#d62728"})):
        pts = [p for p in known if pick(p)]
        style = marker if name == "chosen" else marker | {
            "color": [p["energy_j_per_token"] for p in pts], "colorscale": "Viridis", "cmin": 0,
            "colorbar": {"title": "J/token"} if name == "screened" else None, "showscale": name == "screened"}
        fig.add_trace(go.Scatter(
            x=[p["cost_per_hour"] for p in pts], y=[p[key] * scale for p in pts], mode="markers", name=name,
            marker=style, customdata=[p["config"] for p in pts],
            text=[f"{p['config']}<br>quality loss {_pct_or_dash(p['quality_loss_pct'], '.2f')}" for p in pts],
            hovertemplate=f"%{{text}}<br>$%{{x:.2f}}/h, %{{y:.2f}} {unit}<extra></extra>"))
    for slo in slos:
        fig.add_hline(y=slo["threshold_s"] * scale, line_dash="dash", line_color="#b42318",
                      annotation_text=f"SLO {slo['slo']}", annotation_position="top left")
    what = "predicted " + title if unit == "ms" else "documented " + title
    fig.update_layout(title=f"Cost vs {what} (color: energy per token)", xaxis_title="$/hour",
                      yaxis_title=f"{title} ({unit})", xaxis_type="log")
    return figure_html(fig)


def _pct_or_dash(x: float | None, fmt: str) -> str:
    return "-" if x is None else f"{x:{fmt}}%"
