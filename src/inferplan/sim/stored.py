"""A registry row read back: its summary as a typed ``Summary``, and the headline a run list shows."""

from __future__ import annotations

from inferplan.errors import InputError
from inferplan.sim.summary_types import Summary
from inferplan.store import RunRecord

SUMMARY_KINDS = ("sim", "plan", "bench")  # the kinds whose registry row holds a run `Summary`


def stored_summary(r: RunRecord) -> Summary | None:
    """The run's summary, typed; None for a kind without one (fit, validate). One that cannot be read is an
    InputError naming the run."""
    return Summary.from_json(r.summary, f"run {r.id} ({r.kind})") if r.kind in SUMMARY_KINDS else None


def run_headline(r: RunRecord) -> str:
    """The figures a line of the run list shows: latency percentiles, a plan's cost and verdict, a validation's
    error, a fit's verdict and speed. An unreadable row shows none (`runs show` says what is wrong with it)."""
    row = r.summary  # a plan's cost and verdict, and validate's and fit's figures, are the row's own fields
    if r.kind == "fit":
        return (f"{'fits' if row.get('fits_context') else 'does not fit'}; decode "
                f"{row.get('decode_tokens_per_s_batch1', 0):,.1f} tok/s at batch 1")
    if r.kind == "validate" and row.get("median_ape_pct") is not None:
        return f"median error {row['median_ape_pct']:.1f}% over {row.get('num_points', 0)} steps"
    try:
        s = stored_summary(r)
    except InputError:
        s = None
    text = f"TTFT p90 {_ms(s.ttft_s.p90)} ms, TPOT p90 {_ms(s.tpot_s.p90)} ms" if s else ""
    if r.kind == "plan" and row.get("plan_cost_per_hour") is not None:
        text += f", ${row['plan_cost_per_hour']:.2f}/h" + ("" if row.get("verified") else " (not verified)")
    return text or "-"


def _ms(x: float | None) -> str:
    return "-" if x is None or x != x else f"{x * 1e3:,.1f}"
