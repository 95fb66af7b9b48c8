"""The simulation report: summary, SLOs, latency CDFs and per-replica time series."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from inferplan.report.html import Section, Table, cdf_figure, line_figure, render
from inferplan.sim.loop import SimResult
from inferplan.sim.summary import request_latencies
from inferplan.sim.summary_types import SimStats, Summary


def _ms(x: float | None) -> str:
    return "-" if x is None or not np.isfinite(x) else f"{x * 1e3:,.1f}"


def summary_section(s: Summary) -> Section:
    rows = []
    for label, v in (("TTFT", s.ttft_s), ("TPOT", s.tpot_s), ("ITL", s.itl_s), ("E2E", s.e2e_s),
                     ("queue delay", s.queue_delay_s)):
        rows.append([label, _ms(v.p50), _ms(v.p90), _ms(v.p99), _ms(v.mean)])
    return Section("Latency (ms)", table=Table(["metric", "p50", "p90", "p99", "mean"], rows))


def simulated(s: Summary) -> SimStats:
    """The simulation-only figures of a simulation's (or a plan's) summary."""
    assert s.sim is not None, "a simulation's summary"
    return s.sim


def totals_section(s: Summary) -> Section:
    def num(x: float | None, fmt: str = "{:,.2f}") -> str:
        return "-" if x is None else fmt.format(x)

    sim = simulated(s)
    rows = [
        ["requests (finished / rejected)", f"{s.num_finished:,} / {s.num_rejected:,}"],
        ["makespan", f"{s.makespan_s:,.1f} s"],
        ["output throughput", f"{s.throughput_output_tokens_per_s:,.0f} tok/s"],
        ["input throughput", f"{s.throughput_input_tokens_per_s:,.0f} tok/s"],
        ["requests per second", num(s.throughput_requests_per_s)],
        ["goodput (requests meeting all SLOs)", f"{num(s.goodput_requests_per_s)} /s"],
        ["preemptions", f"{sim.num_preemptions:,}"],
        ["prefix-cache hit tokens", f"{sim.prefix_cache_hit_tokens:,}"],
        *([["KV tokens copied to or from host memory", f"{sim.host_copied_tokens:,}"]] if sim.host_copied_tokens
          else []),
        ["cost per hour", num(sim.cost_per_hour, "${:,.2f}")],
        ["cost per million output tokens", num(sim.cost_per_million_output_tokens, "${:,.3f}")],
        ["energy per output token", num(sim.energy_j_per_output_token, "{:,.3f} J")],
        ["utilization per replica", ", ".join(f"{u:.0%}" for u in sim.utilization)],
    ]
    if s.rejected_by_reason:
        rows.append(["rejections", ", ".join(f"{k}: {v}" for k, v in s.rejected_by_reason.items())])
    return Section("Totals", table=Table(["", "value"], rows))


def slo_section(s: Summary) -> Section | None:
    if not s.slos:
        return None
    rows = [[c.slo, _ms(c.value_s) + " ms", "met" if c.met else "missed"] for c in s.slos]
    att = s.slo_attainment
    return Section("SLOs", note=f"Requests meeting every per-request SLO: {att:.1%}",
                   table=Table(["objective", "measured", "verdict"], rows))


def timeseries_section(res: SimResult) -> Section:
    figs = []
    arrays = [r.series.as_arrays() for r in res.replicas]
    width = res.replicas[0].series.bucket_s
    counts, edges = np.histogram(res.workload.arrival_s, bins=max(1, int(np.ceil(res.makespan_s / width))),
                                 range=(0, max(res.makespan_s, width)))
    figs.append(line_figure("Arrivals", edges[:-1], {"requests/s": counts / width}, "requests/s"))
    figs.append(line_figure("Output throughput", arrays[0]["t_s"],
                            {f"replica {i}": a["decode_tokens"] / width for i, a in enumerate(arrays)}, "tokens/s"))
    figs.append(line_figure("Running (batch size, time-averaged)", arrays[0]["t_s"],
                            {f"replica {i}": a["running_s"] / width for i, a in enumerate(arrays)}, "requests"))
    figs.append(line_figure("Waiting (queue, time-averaged)", arrays[0]["t_s"],
                            {f"replica {i}": a["waiting_s"] / width for i, a in enumerate(arrays)}, "requests"))
    figs.append(line_figure(
        "KV cache in use (peak per bucket)", arrays[0]["t_s"],
        {f"replica {i}": 100 * a["kv_blocks_max"] / r.state.pool.num_blocks
         for i, (a, r) in enumerate(zip(arrays, res.replicas, strict=True))}, "% of blocks"))
    figs.append(line_figure("Utilization", arrays[0]["t_s"],
                            {f"replica {i}": 100 * a["busy_s"] / width for i, a in enumerate(arrays)}, "% busy"))
    return Section("Over time", note=f"Buckets of {width:g} s; a step counts in the bucket where it starts.",
                   figures=figs)


def write_sim_report(path: Path, res: SimResult, summary: Summary, inputs: dict[str, Any], title: str) -> Path:
    lat = request_latencies(res.table)
    fin = res.table.status == 3
    sections = [totals_section(summary), summary_section(summary)]
    slo = slo_section(summary)
    if slo:
        sections.append(slo)
    sections.append(Section("Latency distributions", figures=[
        cdf_figure("TTFT", {"TTFT": lat["ttft"][fin]}),
        cdf_figure("TPOT", {"TPOT": lat["tpot"][fin]}),
        cdf_figure("End to end", {"E2E": lat["e2e"][fin]}),
        cdf_figure("Queue delay", {"queue": lat["queue"][fin]}),
    ]))
    sections.append(timeseries_section(res))
    sim = simulated(summary)
    subtitle = (f"{summary.num_requests:,} requests, {sim.num_replicas} replica(s), "
                f"policy {sim.policy}, router {sim.router}")
    return render(path, title, subtitle, sections, inputs)
