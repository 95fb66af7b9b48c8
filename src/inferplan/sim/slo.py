"""Service-level objectives: 'ttft_p90=1s,tpot_p90=50ms' parsed into checks."""

from __future__ import annotations

import re
from dataclasses import dataclass

from inferplan.errors import InputError

METRICS = ("ttft", "tpot", "itl", "e2e")
_UNITS = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "m": 60.0}
_ITEM = re.compile(r"^(ttft|tpot|itl|e2e)_p(\d{1,2}(?:\.\d+)?)=(\d+(?:\.\d+)?)(s|ms|us|m)$")


@dataclass(frozen=True, slots=True)
class SLO:
    """The ``percentile``-th percentile of ``metric`` must be at most ``threshold_s``."""

    metric: str
    percentile: float
    threshold_s: float

    def __str__(self) -> str:
        return f"{self.metric}_p{self.percentile:g}<={self.threshold_s * 1e3:g}ms"


def parse_slos(text: str | None) -> tuple[SLO, ...]:
    if not text:
        return ()
    out = []
    for item in text.replace(" ", "").split(","):
        m = _ITEM.match(item)
        if not m:
            raise InputError(
                f"cannot read SLO '{item}': write METRIC_pNN=VALUE with METRIC one of {', '.join(METRICS)} "
                "and a unit s, ms or us (e.g. ttft_p90=1s,tpot_p90=50ms)"
            )
        pct = float(m.group(2))
        if not 0 < pct < 100:
            raise InputError(f"SLO '{item}': percentile must be between 0 and 100")
        out.append(SLO(m.group(1), pct, float(m.group(3)) * _UNITS[m.group(4)]))
    return tuple(out)
