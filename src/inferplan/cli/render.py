"""Tables and lines the verbs print: one run summary, a comparison, SLO verdicts; any run kind."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from inferplan.cli.output import out, print_table

if TYPE_CHECKING:
    from inferplan.api import Latency, Summary


def ms(x: float | None) -> str:
    return "-" if x is None or x != x else f"{x * 1e3:,.1f}"


def num(x: float | None) -> str:
    return "-" if x is None else f"{x:,.4g}"


def span(x: float) -> str:
    """A measured latency or finish time: milliseconds below 10 s, seconds above, 'never' for what never ended."""
    if x == float("inf"):
        return "never (a request did not finish)"
    return f"{ms(x)} ms" if x < 10 else f"{x:,.1f} s"


def _latencies(s: Summary) -> tuple[tuple[str, Latency], ...]:
    return (("TTFT ms", s.ttft_s), ("TPOT ms", s.tpot_s), ("ITL ms", s.itl_s), ("E2E ms", s.e2e_s),
            ("queue ms", s.queue_delay_s))


def print_summary(s: Summary, title: str | None = None) -> None:
    """A latency table and the totals of a simulate, bench or plan summary (what its kind lacks is left out)."""
    from rich.table import Table

    from inferplan.api import SimContext

    workload = s.workload or {}
    head = title or s.deployment or "run"
    t = Table(title=f"{head} - {workload.get('name', '?')} ({s.num_requests:,} requests)")
    for col in ("metric", "p50", "p90", "p99", "mean"):
        t.add_column(col, justify="left" if col == "metric" else "right")
    for label, v in _latencies(s):
        t.add_row(label, ms(v.p50), ms(v.p90), ms(v.p99), ms(v.mean))
    print_table(t)
    if s.classes:
        print_classes(s)
    out.print(_totals(s))
    for c in s.slos:
        verdict = "[green]met[/]" if c.met else "[red]missed[/]"
        out.print(f"SLO {c.slo}: measured {span(c.value_s)} - {verdict}")
    if s.slo_attainment is not None:
        out.print(f"SLO attainment (requests meeting every SLO): {s.slo_attainment:.1%}")
    failed = s.bench.failed_by_reason if s.bench else {}
    for reasons, what in ((s.rejected_by_reason, "rejected"), (failed, "failed")):
        if reasons:
            out.print(f"{what}: " + ", ".join(f"{k}: {v}" for k, v in reasons.items()))
    if s.sim and s.sim.overload:
        out.print(f"[yellow]warning[/]: {s.sim.overload}")
    if isinstance(s.context, SimContext) and s.context.ranges:
        spans = ", ".join(f"{k.replace('_p50', '').upper()} p50 {ms(lo)}-{ms(hi)} ms"
                          for k, (lo, hi) in s.context.ranges.items())
        out.print(f"likely ranges (10-90%, from {s.context.range_basis}): {spans}", soft_wrap=True)
    band = s.context.step_time_range_pct if isinstance(s.context, SimContext) else None
    if band is not None:
        out.print(f"calibrated profile: step times are uncertain by +-{band:.0f}% (1 s.d.); latencies scale with them "
                  "at light load and by more near saturation")


def print_classes(s: Summary) -> None:
    """One row per workload class: its latencies, throughput, and its SLOs or its deadline."""
    from rich.table import Table

    t = Table(title="by workload class")
    for col in ("class", "kind", "requests", "finished", "TTFT p90 ms", "TPOT p90 ms", "output tok/s",
                "within SLOs", "last finish", "deadline"):
        t.add_column(col, justify="left" if col in ("class", "kind") else "right")
    for c in s.classes:
        deadline = "-" if c.deadline_s is None else f"{c.deadline_s:,.0f} s " + ("met" if c.deadline_met else "missed")
        t.add_row(c.name, "online" if c.online else "offline", f"{c.num_requests:,}", f"{c.num_finished:,}",
                  ms(c.ttft_p90_s), ms(c.tpot_p90_s), f"{c.throughput_output_tokens_per_s:,.0f}",
                  "-" if c.slo_attainment is None else f"{c.slo_attainment:.1%}",
                  "-" if c.last_finish_s is None else f"{c.last_finish_s:,.1f} s", deadline)
    print_table(t)
    if s.fairness_jain is not None:
        out.print(f"fairness across classes (Jain's index of their SLO attainment, 1 = even): {s.fairness_jain:.3f}")


def _totals(s: Summary) -> str:
    sim = s.sim
    parts = [f"finished {s.num_finished:,}, rejected {s.num_rejected:,}"
             + (f", preemptions {sim.num_preemptions:,}" if sim else "")
             + (f", {sim.host_copied_tokens:,} KV tokens copied via host memory" if sim and sim.host_copied_tokens
                else "")]
    parts.append(f"{s.throughput_output_tokens_per_s:,.0f} output tok/s, {s.throughput_requests_per_s:.2f} req/s")
    parts.append(f"goodput {s.goodput_requests_per_s:.2f} req/s")
    if sim and sim.cost_per_million_output_tokens is not None and sim.cost_per_hour is not None:
        parts.append(f"${sim.cost_per_hour:.2f}/h, ${sim.cost_per_million_output_tokens:.3f} per M output tokens")
    if sim and sim.energy_j_per_output_token:
        parts.append(f"{sim.energy_j_per_output_token:.2f} J/token")
    return " | ".join(parts)


def print_comparison(rows: list[dict[str, Any]], title: str, labels: tuple[str, str, str, str]) -> None:
    """Rows of `compare_runs` as a table: metric, A, B, B - A, change in percent."""
    from rich.table import Table

    t = Table(title=title)
    for col in ("metric", *labels):
        t.add_column(col, justify="left" if col == "metric" else "right")
    for row in rows:
        pct = "-" if row["change_pct"] is None else f"{row['change_pct']:+.1f}%"
        t.add_row(row["metric"], num(row["a"]), num(row["b"]), num(row["delta"]), pct)
    print_table(t)
