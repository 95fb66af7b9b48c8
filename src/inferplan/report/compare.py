"""Two runs side by side: per-metric deltas and errors, and a report with their latency CDFs overlaid."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

import numpy as np

from inferplan.errors import InputError
from inferplan.measure.bench_records import read_request_latencies
from inferplan.report.html import Section, Table, cdf_figure, render
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
    path = Path(run.out_dir or "") / "requests.csv"
    if not run.out_dir or not path.exists():
        raise InputError(f"run {run.id}: its requests.csv is missing (expected {path}); was the folder moved?")
    return read_request_latencies(path)


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
    sections = [
        Section("Metrics", note=note, table=table),
        Section("Latency distributions", figures=[
            cdf_figure(title, {name_a: la[key], name_b: lb[key]})
            for key, title in (("ttft", "TTFT"), ("tpot", "TPOT"), ("e2e", "End to end"))
        ]),
    ]
    return render(path, f"Comparison: {a.label} vs {b.label}", f"reference {a.id}, other {b.id}", sections,
                  {"reference": a.inputs, "other": b.inputs})
