"""How much room a plan leaves under each SLO, and how likely the SLO holds given the model's own errors.

The spread is the calibration residuals of the fleet's device kinds (``perf/ranges.py``): a simulated
TTFT p90 of 0.8 s against a 1 s SLO holds with the probability that the truth, ``predicted / (1 + e)``,
stays under 1 s. With several kinds, the least likely one counts. ``--confidence c`` plans each SLO
for the prediction that keeps the truth within it with probability ``c``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from inferplan.errors import InputError
from inferplan.perf.ranges import PHASE_OF_METRIC, Spread, spread_for
from inferplan.sim.class_summary import is_deadline_check
from inferplan.sim.slo import SLO
from inferplan.sim.summary_types import Summary


@dataclass(frozen=True, slots=True)
class SloMargin:
    slo: str
    threshold_s: float
    predicted_s: float
    margin_pct: float  # room left under the SLO, as a share of it
    probability: float | None  # that the SLO holds, from the residuals (None: no residuals for these kinds)
    basis: str  # which residuals

    def to_json(self) -> dict[str, object]:
        return {f: getattr(self, f) for f in self.__slots__}


def _spreads(metric: str, kinds: Iterable[str]) -> list[tuple[str, Spread]]:
    phase = PHASE_OF_METRIC.get(metric)
    found = [(k, spread_for(k, phase)) for k in sorted(set(kinds))] if phase else []
    return [(k, s) for k, s in found if s is not None]


def slo_margins(summary: Summary, slos: tuple[SLO, ...], kinds: Iterable[str]) -> list[SloMargin]:
    """The margin and probability of each SLO for the simulated ``summary`` of a fleet of ``kinds``."""
    kinds = tuple(kinds)
    out = []
    # the summary checked the SLOs it was planned for (tightened, with --confidence), in the same order:
    # each check's value is the simulated percentile, whatever threshold it was checked against
    latency = [c for c in summary.slos if not is_deadline_check(c)]  # deadline checks follow the SLOs'
    for slo, check in zip(slos, latency, strict=False):
        spreads = _spreads(slo.metric, kinds)
        probs = [(s.probability_at_most(check.value_s, slo.threshold_s), k, s.count) for k, s in spreads]
        worst = min(probs) if probs else None
        basis = (f"{worst[1]} {PHASE_OF_METRIC[slo.metric]} residuals ({worst[2]} measurements)" if worst
                 else f"no calibration residuals for {', '.join(kinds)} {slo.metric}")
        out.append(SloMargin(str(slo), slo.threshold_s, check.value_s, 100 * (1 - check.value_s / slo.threshold_s),
                             worst[0] if worst else None, basis))
    return out


def tightened(slos: tuple[SLO, ...], kinds: Iterable[str], confidence: float) -> tuple[tuple[SLO, ...], list[str]]:
    """The SLOs to plan for so each holds with probability ``confidence`` on the most pessimistic of ``kinds``,
    and a line per SLO saying what it became and why."""
    if not 0.5 <= confidence < 1:
        raise InputError(f"--confidence must be at least 0.5 and below 1 (got {confidence:g})")
    kinds = tuple(kinds)
    out, notes = [], []
    for slo in slos:
        spreads = _spreads(slo.metric, kinds)
        if not spreads:
            out.append(slo)
            notes.append(f"{slo}: kept (no calibration residuals for {', '.join(kinds)} {slo.metric})")
            continue
        kind, spread = min(spreads, key=lambda ks: ks[1].limit_to_plan_for(slo.threshold_s, confidence))
        target = min(slo.threshold_s, spread.limit_to_plan_for(slo.threshold_s, confidence))
        out.append(replace(slo, threshold_s=target))
        notes.append(f"{slo}: planned as {target * 1e3:.4g} ms, which holds with probability {confidence:g} under "
                     f"the {kind} {PHASE_OF_METRIC[slo.metric]} residuals ({spread.count} measurements)")
    return tuple(out), notes
