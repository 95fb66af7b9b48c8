"""Workload classes: ``--workload chat:rate=10 --workload batch:count=5000,deadline=6h`` read into specs.

A class is a preset or a trace with its own options after a colon: ``rate`` (requests/s),
``count`` (requests), ``duration`` (seconds of arrivals), ``deadline`` (each request must finish
within it of its arrival; such requests are judged by it, not by the latency SLOs),
``priority`` (lower is more important, vLLM's convention; default the preset's: ``batch`` 1, else 0),
``throughput`` (output tokens/s the class must be served at, at least: its requests must all be done
by its first arrival + its output tokens / throughput; judged like a deadline), ``name``, and for a
preset its shape (a client of its own, ServeGen P150): ``arrivals`` (poisson, gamma, diurnal, onoff,
burst), ``cv`` (gamma's coefficient of variation), ``period`` (one diurnal cycle), ``input`` and
``output`` (median tokens; the preset's spread kept).
Durations take a unit: ``90s``, ``30m``, ``6h`` (a bare number is seconds). Classes given as one
string are joined by `` + ``, which is how a run's configuration records them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from inferplan.errors import InputError

SEPARATOR = " + "
KEYS = ("rate", "count", "duration", "deadline", "throughput", "priority", "name", "arrivals", "cv", "period", "input",
        "output")
ARRIVALS = ("poisson", "gamma", "diurnal", "onoff", "burst")
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
    throughput: float | None = None  # output tokens/s the class must be served at, at least (offline work)
    priority: int | None = None
    name: str | None = None
    arrivals: str | None = None
    cv: float | None = None
    period_s: float | None = None
    input_median: int | None = None
    output_median: int | None = None

    @property
    def has_options(self) -> bool:
        return any(getattr(self, f) is not None for f in self.__slots__ if f != "source")

    @property
    def shapes(self) -> bool:
        """Whether it reshapes a preset (its arrivals or lengths), which a trace cannot take."""
        return any(v is not None for v in (self.arrivals, self.cv, self.period_s, self.input_median,
                                           self.output_median))


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
    return class_spec(source, values, f"--workload '{text}'")


def class_spec(source: str, values: dict[str, str], where: str) -> ClassSpec:
    """A class from its option values as text (``where`` names them in errors: a flag, or a spec file's entry)."""
    count, inputs, outputs = (_positive(where, k, values.get(k), int) for k in ("count", "input", "output"))
    arrivals = values.get("arrivals")
    if arrivals is not None and arrivals not in ARRIVALS:
        raise InputError(f"{where}: arrivals={arrivals} is not one of {', '.join(ARRIVALS)}")
    if values.get("cv") is not None and arrivals != "gamma":
        raise InputError(f"{where}: cv shapes gamma arrivals; add arrivals=gamma")
    if values.get("period") is not None and arrivals != "diurnal":
        raise InputError(f"{where}: period shapes diurnal arrivals; add arrivals=diurnal")
    if values.get("throughput") is not None and values.get("deadline") is not None:
        raise InputError(f"{where}: give an offline class a deadline or a throughput (output tokens/s), not both")
    return ClassSpec(source, rate=_positive(where, "rate", values.get("rate"), float),
                     count=None if count is None else int(count),
                     duration_s=_duration(where, "duration", values.get("duration")),
                     deadline_s=_duration(where, "deadline", values.get("deadline")),
                     throughput=_positive(where, "throughput", values.get("throughput"), float),
                     priority=_whole(where, values.get("priority")), name=values.get("name"), arrivals=arrivals,
                     cv=_positive(where, "cv", values.get("cv"), float),
                     period_s=_duration(where, "period", values.get("period")),
                     input_median=None if inputs is None else int(inputs),
                     output_median=None if outputs is None else int(outputs))


def _positive(where: str, key: str, value: str | None, kind: type[float] | type[int]) -> float | None:
    if value is None:
        return None
    try:
        number = kind(value)
    except ValueError:
        raise InputError(f"{where}: {key}={value} is not a {'whole ' if kind is int else ''}number") from None
    if not number > 0:
        raise InputError(f"{where}: {key} must be positive, got {value}")
    return number


def _duration(where: str, key: str, value: str | None) -> float | None:
    if value is None:
        return None
    m = _DURATION.match(value)
    if not m:
        raise InputError(f"{where}: {key}={value} is not a duration; write a number with a unit "
                         "s, m, h or d (e.g. 90s, 30m, 6h)")
    seconds = float(m.group(1)) * _UNITS[m.group(2) or ""]
    if not seconds > 0:
        raise InputError(f"{where}: {key} must be positive, got {value}")
    return seconds


def _whole(where: str, value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise InputError(f"{where}: priority={value} is not a whole number "
                         "(lower is more important, e.g. priority=1 for background work)") from None


def read_client_spec(path: Path) -> list[ClassSpec]:
    """A YAML file of clients, each a class: ``clients: [{workload: chat, rate: 5.5, arrivals: gamma, cv: 1.1},
    {workload: batch, count: 5000, deadline: 6h}]`` with the options of ``--workload NAME:key=value``."""
    try:
        doc = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: cannot read the client spec ({e})") from None
    except yaml.YAMLError as e:
        raise InputError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
    clients = doc.get("clients") if isinstance(doc, dict) else None
    if not isinstance(clients, list) or not clients:
        raise InputError(f"{path}: expected a list under 'clients:', each with a 'workload' (a preset or a trace) "
                         "and its options, e.g. clients: [{workload: chat, rate: 5}]")
    out = []
    for i, entry in enumerate(clients):
        where = f"{path}: clients[{i}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("workload"), str):
            raise InputError(f"{where}: each client needs 'workload:' naming a preset or a trace file")
        unknown = sorted(set(entry) - {"workload", *KEYS})
        if unknown:
            raise InputError(f"{where}: unknown field '{unknown[0]}'; the fields are workload, {', '.join(KEYS)}")
        source = entry["workload"]
        if not Path(source).is_absolute() and (path.parent / source).exists():
            source = str(path.parent / source)  # a trace beside the spec
        out.append(class_spec(source, {k: str(v) for k, v in entry.items() if k != "workload"}, where))
    return out
