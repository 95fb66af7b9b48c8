"""Runs side by side: per-metric deltas and errors, their latency CDFs overlaid, and their inputs' diff."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

import numpy as np

from inferplan.errors import InputError
from inferplan.report.html import Section, Table, flat_rows, render
from inferplan.report.kept import run_latencies
from inferplan.report.sim_report import latency_section
from inferplan.sim.stored import stored_summary
from inferplan.sim.summary_types import Summary
from inferplan.store import RunRecord

COMPARED = (
    "ttft_s.p50", "ttft_s.p90", "ttft_s.p99", "tpot_s.p50", "tpot_s.p90", "tpot_s.p99", "itl_s.p50", "itl_s.p99",
    "e2e_s.p50", "e2e_s.p90", "e2e_s.p99", "throughput_output_tokens_per_s", "throughput_requests_per_s",
    "goodput_requests_per_s", "slo_attainment", "num_preemptions", "num_rejected", "cost_per_million_output_tokens",
    "energy_j_per_output_token",
)
HEADLINE = ("ttft_s.p50", "ttft_s.p90", "tpot_s.p50", "tpot_s.p90", "e2e_s.p50", "e2e_s.p90",
            "throughput_output_tokens_per_s")


def compared_metrics(s: Summary | None) -> dict[str, float | None]:
    """The metrics `COMPARED` names, of one run; a metric its kind does not have (a bench's preemptions,
    anything of a run without a summary) is missing."""
    if s is None:
        return {}
    sim = s.sim
    return {
        "ttft_s.p50": s.ttft_s.p50, "ttft_s.p90": s.ttft_s.p90, "ttft_s.p99": s.ttft_s.p99,
        "tpot_s.p50": s.tpot_s.p50, "tpot_s.p90": s.tpot_s.p90, "tpot_s.p99": s.tpot_s.p99,
        "itl_s.p50": s.itl_s.p50, "itl_s.p99": s.itl_s.p99,
        "e2e_s.p50": s.e2e_s.p50, "e2e_s.p90": s.e2e_s.p90, "e2e_s.p99": s.e2e_s.p99,
        "throughput_output_tokens_per_s": s.throughput_output_tokens_per_s,
        "throughput_requests_per_s": s.throughput_requests_per_s,
        "goodput_requests_per_s": s.goodput_requests_per_s,
        "slo_attainment": s.slo_attainment,
        "num_rejected": s.num_rejected,
    } | ({} if sim is None else {
        "num_preemptions": sim.num_preemptions,
        "cost_per_million_output_tokens": sim.cost_per_million_output_tokens,
        "energy_j_per_output_token": sim.energy_j_per_output_token,
    })


def compare_runs(a: Summary | None, b: Summary | None) -> list[dict[str, Any]]:
    """One row per metric either run reports: a, b, b - a and the change (error) relative to a, in percent."""
    ma, mb = compared_metrics(a), compared_metrics(b)
    rows = []
    for metric in COMPARED:
        va, vb = ma.get(metric), mb.get(metric)
        if va is None and vb is None:
            continue
        delta = None if va is None or vb is None else vb - va
        pct = None if delta is None or not va else 100 * delta / abs(va)
        rows.append({"metric": metric, "a": va, "b": vb, "delta": delta, "change_pct": pct})
    return rows


def headline_error(rows: list[dict[str, Any]]) -> float | None:
    """Median absolute percentage error over the headline latency percentiles and throughput."""
    errs = [abs(r["change_pct"]) for r in rows if r["metric"] in HEADLINE and r["change_pct"] is not None]
    return statistics.median(errs) if errs else None


def _latencies(run: RunRecord) -> dict[str, np.ndarray[Any, np.dtype[np.float64]]]:
    lat = run_latencies(run)
    if lat is None:
        path = Path(run.out_dir or "") / "requests.csv"
        raise InputError(f"run {run.id}: its requests.csv is missing (expected {path}); was the folder moved?")
    return lat


def write_compare_report(path: Path, a: RunRecord, b: RunRecord, rows: list[dict[str, Any]]) -> Path:
    la, lb = _latencies(a), _latencies(b)
    name_a, name_b = f"{a.kind} {a.id}", f"{b.kind} {b.id}"

    def f(x: Any) -> str:
        return "-" if x is None else f"{x:,.4g}"

    table = Table(["metric", "reference", "other", "other - ref", "error"],
                  [[r["metric"], f(r["a"]), f(r["b"]), f(r["delta"]),
                    "-" if r["change_pct"] is None else f"{r['change_pct']:+.1f}%"] for r in rows])
    mape = headline_error(rows)
    note = "" if mape is None else f"Median absolute error over the headline metrics: {mape:.1f}%."
    sections = [Section("Metrics", note=note, table=table), latency_section({name_a: la, name_b: lb})]
    return render(path, f"Comparison: {a.label} vs {b.label}", f"reference {a.id}, other {b.id}", sections,
                  {"reference": a.inputs, "other": b.inputs})


def comparison_sections(runs: list[RunRecord]) -> list[Section]:
    """Runs side by side, the first the reference: every metric they report with the change from the first,
    their latency CDFs overlaid, and the inputs that differ."""
    if len(runs) < 2:  # noqa: PLR2004
        raise InputError("pick at least two runs to compare")
    ref = stored_summary(runs[0])
    against = [{row["metric"]: row for row in compare_runs(ref, stored_summary(r))} for r in runs[1:]]
    rows = []
    for m in COMPARED:
        cells = [x.get(m) for x in against]
        if any(cells):
            first = next(c for c in cells if c)["a"]
            rows.append([m, _cell(first, None), *[_cell(c["b"], c["change_pct"]) if c else "-" for c in cells]])
    names = [f"{r.kind} {r.id}" for r in runs]
    out = [Section("Metrics", note="Each cell: the value, and its change from the first run.",
                   table=Table(["metric", *names], rows))]
    lat = {name: x for name, r in zip(names, runs, strict=True) if (x := run_latencies(r)) is not None}
    if lat:
        out.append(latency_section(lat, note="" if len(lat) == len(runs) else
                                   "Runs that kept no per-request latencies are left out."))
    inputs = [dict(flat_rows(r.inputs)) for r in runs]
    keys = sorted({k for x in inputs for k in x})
    diff = [[k, *[x.get(k, "-") for x in inputs]] for k in keys if len({x.get(k, "-") for x in inputs}) > 1]
    out.append(Section("Configuration diff", note="" if diff else "The runs' inputs are the same.",
                       table=Table(["input", *names], diff) if diff else None))
    return out


def _cell(value: float | None, change_pct: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.4g}" + ("" if change_pct is None else f" ({change_pct:+.1f}%)")
