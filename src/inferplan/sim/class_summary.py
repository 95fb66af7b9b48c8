"""Workload classes in a summary: deadlines judged beside the SLOs, and each class's own figures.

A request with a deadline (an offline class: ``batch:count=5000,deadline=6h``) is judged by
whether it finished within the deadline of its arrival; the latency SLOs judge the others
(HyGen, P140: offline work has throughput goals, online work latency goals).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from inferplan.sim.summary_types import ClassSummary, SloCheck
from inferplan.workload.request import Workload

DEADLINE = " done within"  # how a deadline check names itself: "batch done within 6h"
F64 = npt.NDArray[np.float64]
B = npt.NDArray[np.bool_]


def within_deadline(e2e: F64, finished: B, deadline_s: F64) -> B:
    """Per request: finished within its deadline (True for requests without one, which the SLOs judge)."""
    with np.errstate(invalid="ignore"):
        return ~np.isfinite(deadline_s) | (finished & (e2e <= deadline_s))


def deadline_checks(wl: Workload, e2e: F64, finished: B) -> tuple[SloCheck, ...]:
    """One check per class with a deadline: its slowest request (inf while one never finished) against it."""
    checks = []
    for k, name in enumerate(wl.class_names):
        mine = wl.class_index == k
        deadlines = wl.deadline_s[mine]
        if not mine.any() or not np.isfinite(deadlines).any():
            continue
        if wl.class_throughput[k] > 0:  # a minimum throughput: every request done by the end its rate implies
            first = float(wl.arrival_s[mine].min())
            limit = float((wl.arrival_s[mine] + deadlines).min()) - first
            worst = float((wl.arrival_s[mine] + e2e[mine]).max()) - first if finished[mine].all() else float("inf")
            text = f"{name}{DEADLINE} {duration_text(limit)} (at least {wl.class_throughput[k]:,.0f} tokens/s)"
        else:
            limit = float(deadlines.min())
            worst = float(e2e[mine].max()) if finished[mine].all() else float("inf")
            text = f"{name}{DEADLINE} {duration_text(limit)}"
        checks.append(SloCheck(slo=text, value_s=worst, met=worst <= limit * (1 + 1e-12)))
    return tuple(checks)


def is_deadline_check(check: SloCheck) -> bool:
    """Whether a check is a class's deadline (``deadline_checks``) rather than a latency SLO."""
    return DEADLINE in check.slo


def class_summaries(wl: Workload, lat: dict[str, F64], finished: B, ok: B | None, output_tokens: npt.NDArray[np.int64],
                    arrival: F64, makespan_s: float) -> tuple[ClassSummary, ...]:
    """Each class's figures, for a workload of more than one (``ok``: per request, within its objectives;
    None: the run had none)."""
    if len(wl.class_names) < 2:
        return ()
    span = max(makespan_s, 1e-9)
    out = []
    for k, name in enumerate(wl.class_names):
        mine = wl.class_index == k
        done = mine & finished
        deadline = wl.deadline_s[mine]
        has_deadline = bool(mine.any() and np.isfinite(deadline).all())
        all_done = bool(finished[mine].all())
        out.append(ClassSummary(
            name=name, online=bool(wl.online[mine].all()) if mine.any() else True,
            num_requests=int(mine.sum()), num_finished=int(done.sum()),
            ttft_p90_s=_p90(lat["ttft"][done]), tpot_p90_s=_p90(lat["tpot"][done]), e2e_p90_s=_p90(lat["e2e"][done]),
            throughput_output_tokens_per_s=float(output_tokens[done].sum()) / span,
            slo_attainment=None if ok is None or not mine.any() else float(ok[mine].mean()),
            deadline_s=float(deadline.min()) if has_deadline else None,
            last_finish_s=float((arrival + lat["e2e"])[mine].max()) if all_done and mine.any() else None,
            deadline_met=bool(within_deadline(lat["e2e"][mine], finished[mine], deadline).all())
            if has_deadline else None,
        ))
    return tuple(out)


def _p90(x: F64) -> float | None:
    x = x[np.isfinite(x)]
    return float(np.percentile(x, 90)) if x.size else None


def duration_text(seconds: float) -> str:
    """6h, 30m, 90s: a deadline as a person writes it."""
    for unit, size in (("d", 86_400.0), ("h", 3600.0), ("m", 60.0)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s" if seconds == round(seconds, 1) else f"{seconds:.1f}s"  # a rate's deadline: 58.0s
