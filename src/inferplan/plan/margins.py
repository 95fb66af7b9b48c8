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
from inferplan.perf.ranges import Spread, latency_spread
from inferplan.sim.class_summary import is_deadline_check
from inferplan.sim.slo import SLO
from inferplan.sim.summary_types import Summary
from inferplan.specs.catalog import default_engine, get_device, get_engine


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


Calibrated = tuple[str, str]  # (device kind, engine): what a replica's residuals are looked up by


def _spreads(metric: str, kinds: Iterable[Calibrated]) -> list[tuple[str, Spread]]:
    """(what the residuals are, the spread) of ``metric`` for each (kind, engine) that has them."""
    out = []
    for kind, engine in sorted(set(kinds)):
        found = latency_spread(kind, engine, metric)
        if found is not None:
            spread, phase = found
            out.append((f"{kind} {phase}" + (" (llama-bench)" if engine == "llamacpp" else ""), spread))
    return out


def calibrated(devices: Iterable[str], engines: Iterable[str] = ()) -> list[Calibrated]:
    """(kind, engine) of every device a plan may use, under each engine it may run there (the device's default
    engine where none is named)."""
    named = tuple(engines)
    out: list[Calibrated] = []
    for name in devices:
        dev = get_device(name)
        out += [(dev.kind, e) for e in named or (default_engine(dev).name,) if get_engine(e).runs(dev.kind)]
    return out


def _names(kinds: Iterable[Calibrated]) -> str:
    return ", ".join(sorted({kind for kind, _ in kinds}))


def slo_margins(summary: Summary, slos: tuple[SLO, ...], kinds: Iterable[Calibrated]) -> list[SloMargin]:
    """The margin and probability of each SLO for the simulated ``summary`` of a fleet of (kind, engine)."""
    kinds = tuple(kinds)
    out = []
    # the summary checked the SLOs it was planned for (tightened, with --confidence), in the same order:
    # each check's value is the simulated percentile, whatever threshold it was checked against
    latency = [c for c in summary.slos if not is_deadline_check(c)]  # deadline checks follow the SLOs'
    for slo, check in zip(slos, latency, strict=False):
        spreads = _spreads(slo.metric, kinds)
        probs = [(s.probability_at_most(check.value_s, slo.threshold_s), k, s.count) for k, s in spreads]
        worst = min(probs) if probs else None
        basis = (f"{worst[1]} residuals ({worst[2]} measurements)" if worst
                 else f"no calibration residuals for {_names(kinds)} {slo.metric}")
        out.append(SloMargin(str(slo), slo.threshold_s, check.value_s, 100 * (1 - check.value_s / slo.threshold_s),
                             worst[0] if worst else None, basis))
    return out


def tightened(slos: tuple[SLO, ...], kinds: Iterable[Calibrated],
              confidence: float) -> tuple[tuple[SLO, ...], list[str]]:
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
            notes.append(f"{slo}: kept (no calibration residuals for {_names(kinds)} {slo.metric})")
            continue
        kind, spread = min(spreads, key=lambda ks: ks[1].limit_to_plan_for(slo.threshold_s, confidence))
        target = min(slo.threshold_s, spread.limit_to_plan_for(slo.threshold_s, confidence))
        out.append(replace(slo, threshold_s=target))
        notes.append(f"{slo}: planned as {target * 1e3:.4g} ms, which holds with probability {confidence:g} under "
                     f"the {kind} residuals ({spread.count} measurements)")
    return tuple(out), notes
