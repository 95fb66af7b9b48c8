"""The simulation report: summary, SLOs, latency CDFs and per-replica time series."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from inferplan.report.html import Section, Table, cdf_figure, line_figure, render
from inferplan.sim.digest import RunDigest
from inferplan.sim.summary_types import SimStats, Summary

Array = npt.NDArray[np.float64]


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


LATENCY_TITLES = {"ttft": "TTFT", "tpot": "TPOT", "e2e": "End to end", "queue": "Queue delay"}


def latency_section(runs: dict[str, dict[str, Array]], title: str = "Latency distributions",
                    note: str = "") -> Section:
    """CDFs of each latency the runs have, one line per run (one run: a report; several: a comparison)."""
    keys = [k for k in LATENCY_TITLES if any(k in lat for lat in runs.values())]
    return Section(title, note=note, figures=[
        cdf_figure(LATENCY_TITLES[k], {name: lat[k] for name, lat in runs.items() if k in lat}) for k in keys])


def timeseries_section(d: RunDigest, title: str = "Over time") -> Section:
    t = d.t_s

    def lines(name: str) -> dict[str, Array]:
        return {f"replica {i}": y for i, y in enumerate(d.series[name])}

    figs = [line_figure("Arrivals", t, {"requests/s": d.arrivals_per_s}, "requests/s"),
            line_figure("Output throughput", t, lines("decode_tokens_per_s"), "tokens/s"),
            line_figure("Running (batch size, time-averaged)", t, lines("running"), "requests"),
            line_figure("Waiting (queue, time-averaged)", t, lines("waiting"), "requests"),
            line_figure("KV cache in use (peak per bucket)", t, lines("kv_used_pct"), "% of blocks"),
            line_figure("Utilization", t, lines("busy_pct"), "% busy")]
    return Section(title, note=f"Buckets of {d.bucket_s:g} s; a step counts in the bucket where it starts.",
                   figures=figs)


def sim_sections(summary: Summary, d: RunDigest | None) -> list[Section]:
    """A simulation's report body: totals, latency percentiles, SLOs, distributions and time series."""
    sections = [totals_section(summary), summary_section(summary)]
    slo = slo_section(summary)
    if slo:
        sections.append(slo)
    if d is not None:
        sections += [latency_section({"simulated": d.latencies}), timeseries_section(d)]
    return sections


def write_sim_report(path: Path, d: RunDigest, summary: Summary, inputs: dict[str, Any], title: str) -> Path:
    sim = simulated(summary)
    subtitle = (f"{summary.num_requests:,} requests, {sim.num_replicas} replica(s), "
                f"policy {sim.policy}, router {sim.router}")
    return render(path, title, subtitle, sim_sections(summary, d), inputs)
