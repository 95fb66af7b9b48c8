"""Ranges, not points: how far a prediction may be from the truth, from the calibration residuals.

`inferplan accuracy --fit` writes ``catalog/residuals.yaml``: for each device kind and phase
(throughput, ttft, itl, tpot, e2e), the quantiles of the signed error ``e = predicted / measured - 1``
of the replayed public measurements. A prediction ``p`` then stands for a truth ``p / (1 + e)``, so
its 10-90% range, the probability it stays within a limit, and the limit to plan for at a given
confidence all follow from those quantiles. A kind or phase without residuals has no range.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from types import MappingProxyType

from inferplan.specs.catalog import catalog_yaml

# SLO metric -> the phase whose residuals describe it (TPOT and ITL are decode steps; E2E the whole request)
PHASE_OF_METRIC = {"ttft": "ttft", "tpot": "tpot", "itl": "itl", "e2e": "e2e"}
# under llama.cpp the residuals are llama-bench's speeds: prompt processing for TTFT, generation for decode gaps
LLAMACPP_PHASE_OF_METRIC = {"ttft": "pp", "tpot": "tg", "itl": "tg"}


@dataclass(frozen=True, slots=True)
class Spread:
    """Quantiles of the signed error at evenly spaced levels (0 to 1), from ``count`` measurements."""

    levels: tuple[float, ...]
    errors: tuple[float, ...]
    count: int
    source: str

    def error_at(self, level: float) -> float:
        return _interp(level, self.levels, self.errors)

    def truth_range(self, predicted: float, low: float = 0.1, high: float = 0.9) -> tuple[float, float]:
        """The range the truth falls in with probability ``high - low``: over-predictions (e > 0) mean a
        smaller truth, so the upper error quantile gives the lower end."""
        return predicted / (1 + self.error_at(high)), predicted / (1 + self.error_at(low))

    def probability_at_most(self, predicted: float, limit: float) -> float:
        """P(truth <= limit) = P(e >= predicted / limit - 1), read off the quantiles."""
        needed = predicted / limit - 1
        if needed <= self.errors[0]:
            return 1.0
        if needed >= self.errors[-1]:
            return 0.0
        return 1.0 - _interp(needed, self.errors, self.levels)

    def limit_to_plan_for(self, limit: float, confidence: float) -> float:
        """The prediction that keeps the truth within ``limit`` with probability ``confidence``."""
        return limit * (1 + self.error_at(1 - confidence))

    def of_times(self) -> Spread:
        """The spread of the times ``n / speed`` where this one is of speeds: a speed over-predicted by ``e``
        is a time under-predicted by ``1 / (1 + e) - 1``, so the quantiles turn around."""
        return Spread(tuple(1.0 - level for level in reversed(self.levels)),
                      tuple(1.0 / (1.0 + e) - 1.0 for e in reversed(self.errors)), self.count, self.source)


def _interp(x: float, xs: Sequence[float], ys: Sequence[float]) -> float:
    """Piecewise-linear ``ys`` at ``x`` over increasing ``xs``, flat beyond the ends (numpy.interp's rule;
    pure Python so that `fit` loads no numpy)."""
    if x <= xs[0]:
        return float(ys[0])
    if x >= xs[-1]:
        return float(ys[-1])
    i = bisect_right(xs, x) - 1
    while i + 1 < len(xs) - 1 and xs[i + 1] == xs[i]:  # repeated quantiles: take the upper run
        i += 1
    x0, x1 = xs[i], xs[i + 1]
    return float(ys[i] + (ys[i + 1] - ys[i]) * (x - x0) / (x1 - x0)) if x1 > x0 else float(ys[i + 1])


@cache
def _table() -> MappingProxyType[str, MappingProxyType[str, Spread]]:
    raw = catalog_yaml("residuals.yaml").get("residuals", {})
    source = str(catalog_yaml("residuals.yaml").get("source", ""))
    return MappingProxyType({kind: MappingProxyType({
        phase: Spread(tuple(v["levels"]), tuple(v["errors"]), int(v["count"]), source)
        for phase, v in phases.items()}) for kind, phases in raw.items()})


def spread_for(kind: str, phase: str) -> Spread | None:
    """The residual spread of ``phase`` predictions on devices of ``kind`` (None where none was measured)."""
    return _table().get(kind, MappingProxyType({})).get(phase)


def latency_spread(kind: str, engine: str, metric: str) -> tuple[Spread, str] | None:
    """The spread of a simulated latency ``metric`` (ttft, tpot, itl, e2e) on ``kind`` devices under ``engine``,
    and the phase of the residuals it comes from: the engines' own latency residuals, or under llama.cpp those of
    llama-bench's prompt and generation speeds, turned into times (None where neither was measured)."""
    if engine == "llamacpp":
        phase = LLAMACPP_PHASE_OF_METRIC.get(metric)
        speed = spread_for(kind, phase) if phase else None
        return None if speed is None or phase is None else (speed.of_times(), phase)
    phase = PHASE_OF_METRIC.get(metric)
    spread = spread_for(kind, phase) if phase else None
    return None if spread is None or phase is None else (spread, phase)


def clear_cache() -> None:
    _table.cache_clear()
