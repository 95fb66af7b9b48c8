"""Two runs side by side: per-metric deltas and errors, and a report with their latency CDFs overlaid."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

import numpy as np

from inferplan.errors import InputError
from inferplan.measure.bench_records import read_request_latencies
from inferplan.report.html import Section, Table, cdf_figure, render
from inferplan.store import RunRecord

COMPARED = [
    ("ttft_s", "p50"), ("ttft_s", "p90"), ("ttft_s", "p99"), ("tpot_s", "p50"), ("tpot_s", "p90"), ("tpot_s", "p99"),
    ("itl_s", "p50"), ("itl_s", "p99"), ("e2e_s", "p50"), ("e2e_s", "p90"), ("e2e_s", "p99"),
    ("throughput_output_tokens_per_s", None), ("throughput_requests_per_s", None), ("goodput_requests_per_s", None),
    ("slo_attainment", None), ("num_preemptions", None), ("num_rejected", None),
    ("cost_per_million_output_tokens", None), ("energy_j_per_output_token", None),
]
HEADLINE = ("ttft_s.p50", "ttft_s.p90", "tpot_s.p50", "tpot_s.p90", "e2e_s.p50", "e2e_s.p90",
            "throughput_output_tokens_per_s")


def compare_runs(a: dict[str, Any], b: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per metric both runs report: a, b, b - a and the change (error) relative to a, in percent."""
    rows = []
    for key, sub in COMPARED:
        va = a.get(key, {}).get(sub) if sub else a.get(key)
        vb = b.get(key, {}).get(sub) if sub else b.get(key)
        if va is None and vb is None:
            continue
        delta = None if va is None or vb is None else vb - va
        pct = None if delta is None or not va else 100 * delta / abs(va)
        rows.append({"metric": f"{key}.{sub}" if sub else key, "a": va, "b": vb, "delta": delta, "change_pct": pct})
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
