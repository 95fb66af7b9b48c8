"""Workload classes: ``--workload chat:rate=10 --workload batch:count=5000,deadline=6h`` read into specs.

A class is a preset or a trace with its own options after a colon: ``rate`` (requests/s),
``count`` (requests), ``duration`` (seconds of arrivals), ``deadline`` (each request must finish
within it of its arrival; such requests are judged by it, not by the latency SLOs) and
``priority`` (lower is more important, vLLM's convention; default the preset's: ``batch`` 1, else 0).
Durations take a unit: ``90s``, ``30m``, ``6h`` (a bare number is seconds). Classes given as one
string are joined by `` + ``, which is how a run's configuration records them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from inferplan.errors import InputError

SEPARATOR = " + "
KEYS = ("rate", "count", "duration", "deadline", "priority")
_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86_400.0}
_DURATION = re.compile(r"^(-?\d+(?:\.\d+)?)(s|m|min|h|d)?$")
_OPTION = re.compile(r"^[a-z_]+=[^,=]+$")


@dataclass(frozen=True, slots=True)
class ClassSpec:
    """One class of a workload: what it is (a preset name or a trace path) and its own options."""

    source: str
    rate: float | None = None
    count: int | None = None
    duration_s: float | None = None
    deadline_s: float | None = None
    priority: int | None = None

    @property
    def has_options(self) -> bool:
        return any(v is not None for v in (self.rate, self.count, self.duration_s, self.deadline_s, self.priority))


def join_workloads(workloads: list[str] | None) -> str:
    """Repeated ``--workload`` values as one configuration value (``split_classes`` reads it back)."""
    return SEPARATOR.join(workloads) if workloads else "chat"


def split_classes(text: str) -> list[ClassSpec]:
    """Every class of a ``--workload`` value (several joined by `` + ``), each read with its options."""
    parts = [p.strip() for p in text.split(SEPARATOR)]
    if any(not p for p in parts):
        raise InputError(f"--workload '{text}': an empty class; write NAME[:key=value,...] for each, "
                         "e.g. --workload chat:rate=10 --workload batch:count=5000,deadline=6h")
    return [parse_class(p) for p in parts]


def parse_class(text: str) -> ClassSpec:
    """``NAME[:key=value,...]``. The options start at the last colon followed by key=value pairs, so a
    trace path with colons in it still reads as a path."""
    source, _, tail = text.rpartition(":")
    if not source or not all(_OPTION.match(item) for item in tail.split(",")):
        return ClassSpec(text)
    values: dict[str, str] = {}
    for item in tail.split(","):
        key, value = item.split("=")
        if key not in KEYS:
            raise InputError(f"--workload '{text}': unknown option '{key}'; the options are {', '.join(KEYS)} "
                             "(e.g. batch:count=5000,deadline=6h)")
        if key in values:
            raise InputError(f"--workload '{text}': '{key}' is given twice")
        values[key] = value
    count = _positive(text, "count", values.get("count"), int)
    return ClassSpec(source, rate=_positive(text, "rate", values.get("rate"), float),
                     count=None if count is None else int(count),
                     duration_s=_duration(text, "duration", values.get("duration")),
                     deadline_s=_duration(text, "deadline", values.get("deadline")),
                     priority=_whole(text, values.get("priority")))


def _positive(text: str, key: str, value: str | None, kind: type[float] | type[int]) -> float | None:
    if value is None:
        return None
    try:
        number = kind(value)
    except ValueError:
        raise InputError(f"--workload '{text}': {key}={value} is not a {'whole ' if kind is int else ''}number"
                         ) from None
    if not number > 0:
        raise InputError(f"--workload '{text}': {key} must be positive, got {value}")
    return number


def _duration(text: str, key: str, value: str | None) -> float | None:
    if value is None:
        return None
    m = _DURATION.match(value)
    if not m:
        raise InputError(f"--workload '{text}': {key}={value} is not a duration; write a number with a unit "
                         "s, m, h or d (e.g. 90s, 30m, 6h)")
    seconds = float(m.group(1)) * _UNITS[m.group(2) or ""]
    if not seconds > 0:
        raise InputError(f"--workload '{text}': {key} must be positive, got {value}")
    return seconds


def _whole(text: str, value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise InputError(f"--workload '{text}': priority={value} is not a whole number "
                         "(lower is more important, e.g. priority=1 for background work)") from None
