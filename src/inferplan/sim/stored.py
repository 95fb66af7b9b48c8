"""A registry row's summary read back as a typed ``Summary``."""

from __future__ import annotations

from inferplan.sim.summary_types import Summary
from inferplan.store import RunRecord

SUMMARY_KINDS = ("sim", "plan", "bench")  # the kinds whose registry row holds a run `Summary`


def stored_summary(r: RunRecord) -> Summary | None:
    """The run's summary, typed; None for a kind without one (fit, validate). One that cannot be read is an
    InputError naming the run."""
    return Summary.from_json(r.summary, f"run {r.id} ({r.kind})") if r.kind in SUMMARY_KINDS else None
