"""Tables and lines the verbs print: one run summary, a comparison, SLO verdicts; any run kind."""

from __future__ import annotations

from typing import Any

from inferplan.cli.output import out, print_table

LATENCIES = (("ttft_s", "TTFT ms"), ("tpot_s", "TPOT ms"), ("itl_s", "ITL ms"), ("e2e_s", "E2E ms"),
             ("queue_delay_s", "queue ms"))


def ms(x: float | None) -> str:
    return "-" if x is None or x != x else f"{x * 1e3:,.1f}"


def num(x: float | None) -> str:
    return "-" if x is None else f"{x:,.4g}"


def print_summary(s: dict[str, Any], title: str | None = None) -> None:
    """A latency table and the totals of a simulate, bench or plan summary (fields it lacks are left out)."""
    from rich.table import Table

    workload = s.get("workload") or {}
    head = title or s.get("deployment") or "run"
    t = Table(title=f"{head} - {workload.get('name', '?')} ({s.get('num_requests', 0):,} requests)")
    for col in ("metric", "p50", "p90", "p99", "mean"):
        t.add_column(col, justify="left" if col == "metric" else "right")
    for key, label in LATENCIES:
        v = s.get(key)
        if isinstance(v, dict):
            t.add_row(label, ms(v.get("p50")), ms(v.get("p90")), ms(v.get("p99")), ms(v.get("mean")))
    print_table(t)
    out.print(_totals(s))
    for c in s.get("slos") or []:
        verdict = "[green]met[/]" if c["met"] else "[red]missed[/]"
        out.print(f"SLO {c['slo']}: measured {ms(c['value_s'])} ms - {verdict}")
    if s.get("slo_attainment") is not None:
        out.print(f"SLO attainment (requests meeting every SLO): {s['slo_attainment']:.1%}")
    for key, what in (("rejected_by_reason", "rejected"), ("failed_by_reason", "failed")):
        if s.get(key):
            out.print(f"{what}: " + ", ".join(f"{k}: {v}" for k, v in s[key].items()))
    if s.get("overload"):
        out.print(f"[yellow]warning[/]: {s['overload']}")
    band = s.get("step_time_range_pct")
    if band is not None:
        out.print(f"calibrated profile: step times are uncertain by +-{band:.0f}% (1 s.d.); latencies scale with them "
                  "at light load and by more near saturation")


def _totals(s: dict[str, Any]) -> str:
    parts = [f"finished {s.get('num_finished', 0):,}, rejected {s.get('num_rejected', 0):,}"
             + (f", preemptions {s['num_preemptions']:,}" if s.get("num_preemptions") is not None else "")]
    parts.append(f"{s.get('throughput_output_tokens_per_s', 0):,.0f} output tok/s, "
                 f"{s.get('throughput_requests_per_s', 0):.2f} req/s")
    if s.get("goodput_requests_per_s") is not None:
        parts.append(f"goodput {s['goodput_requests_per_s']:.2f} req/s")
    cost = s.get("cost_per_million_output_tokens")
    if cost is not None and s.get("cost_per_hour") is not None:
        parts.append(f"${s['cost_per_hour']:.2f}/h, ${cost:.3f} per M output tokens")
    if s.get("energy_j_per_output_token"):
        parts.append(f"{s['energy_j_per_output_token']:.2f} J/token")
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
