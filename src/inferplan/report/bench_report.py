"""The bench report: the simulation report's latency and SLO sections, plus what the client saw over time."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from inferplan.measure.request_record import RequestRecord
from inferplan.report.html import Section, Table, cdf_figure, line_figure, render
from inferplan.report.sim_report import slo_section, summary_section
from inferplan.sim.summary_types import Summary


def _totals(s: Summary, notes: list[str]) -> Section:
    assert s.bench is not None, "a bench's summary"
    rows = [
        ["requests (finished / failed)", f"{s.num_finished:,} / {s.num_rejected:,}"],
        ["wall time", f"{s.makespan_s:,.1f} s"],
        ["output throughput", f"{s.throughput_output_tokens_per_s:,.1f} tok/s"],
        ["input throughput", f"{s.throughput_input_tokens_per_s:,.1f} tok/s"],
        ["requests per second", f"{s.throughput_requests_per_s:,.2f}"],
        ["goodput (requests meeting all SLOs)", f"{s.goodput_requests_per_s:,.2f} /s"],
        ["outputs shorter than requested", f"{s.bench.num_output_short:,}"],
    ]
    if s.rejected_by_reason:
        rows.append(["failures", ", ".join(f"{k}: {v}" for k, v in s.rejected_by_reason.items())])
    return Section("Totals", note=" ".join(notes), table=Table(["", "value"], rows))


def _over_time(records: list[RequestRecord], wall_s: float) -> Section:
    width = max(wall_s / 60, 1.0)
    bins = max(1, int(np.ceil(wall_s / width)))
    edges = np.arange(bins + 1, dtype=np.float64) * width
    tokens = np.concatenate([np.asarray(r.token_times_s) + r.sent_s for r in records if r.token_times_s]
                            or [np.zeros(0)])
    tok_counts, _ = np.histogram(tokens, bins=edges)
    sent = np.array([r.sent_s for r in records if np.isfinite(r.sent_s)])
    done = np.array([r.done_s for r in records if np.isfinite(r.done_s)])
    mids: np.ndarray[Any, np.dtype[np.float64]] = edges[:-1] + width / 2
    in_flight = np.searchsorted(np.sort(sent), mids) - np.searchsorted(np.sort(done), mids)
    sent_counts, _ = np.histogram(sent, bins=edges)
    return Section("Over time", note=f"Buckets of {width:.3g} s, client clock.", figures=[
        line_figure("Requests sent", edges[:-1], {"requests/s": sent_counts / width}, "requests/s"),
        line_figure("Text chunks received", edges[:-1], {"chunks/s": tok_counts / width}, "chunks/s"),
        line_figure("Requests in flight", mids, {"in flight": in_flight.astype(float)}, "requests"),
    ])


def write_bench_report(path: Path, records: list[RequestRecord], summary: Summary, inputs: dict[str, Any],
                       notes: list[str]) -> Path:
    fin = [r for r in records if r.status == "finished"]
    gaps = np.array([g for r in fin for g in r.gaps_s])
    sections = [_totals(summary, notes), summary_section(summary)]
    slo = slo_section(summary)
    if slo:
        sections.append(slo)
    sections.append(Section("Latency distributions", figures=[
        cdf_figure("TTFT", {"TTFT": np.array([r.ttft_s for r in fin])}),
        cdf_figure("TPOT", {"TPOT": np.array([r.tpot_s for r in fin])}),
        cdf_figure("Inter-token gaps", {"gap": gaps}),
        cdf_figure("End to end", {"E2E": np.array([r.e2e_s for r in fin])}),
    ]))
    sections.append(_over_time(records, summary.makespan_s))
    failed = [r for r in records if r.status != "finished"][:50]
    if failed:
        sections.append(Section("Failed requests (first 50)", table=Table(
            ["request", "sent at (s)", "error"], [[str(r.request_id), f"{r.sent_s:.3f}", r.error] for r in failed])))
    title = f"Benchmark: {inputs.get('model') or 'model'} at {inputs['url']}"
    subtitle = f"{summary.num_requests:,} requests, {inputs['api']} API, workload {inputs['workload']}"
    return render(path, title, subtitle, sections, inputs)
