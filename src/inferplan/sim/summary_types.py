"""A run's summary as one typed value, and its JSON: the schema of every summary, written once.

`summarize` (a simulation) and `bench_summary` (a real server) both return a `Summary`.
`Summary.to_json` is the one place its dict is made: summary.json, plan.json, the run registry
and `--json` all print it. `Summary.from_json` reads one back (a registry row, an older run's
file). What only one kind of run knows sits in an optional group, published only when present:
`sim` (engine counters, cost, energy, the fleet), `bench` (failures and short outputs), and the
recorded run's `context`. So a simulation's JSON has no ``num_failed`` key and a bench's no
``policy``, and a recorded run's ``step_time_range_pct`` is published even when it is null.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from inferplan.errors import InputError


def _fields_json(obj: Any) -> dict[str, Any]:
    """A flat group's JSON: every field in declaration order (the published order), tuples as lists and
    mappings copied, so a field added to the group is published without a second list to update."""
    out: dict[str, Any] = {}
    for f in fields(obj):
        v = getattr(obj, f.name)
        out[f.name] = list(v) if isinstance(v, tuple) else dict(v) if isinstance(v, Mapping) else v
    return out


@dataclass(frozen=True, slots=True, kw_only=True)
class Latency:
    """Percentiles and mean of one latency over finished requests, in seconds; None where no request had one."""

    p50: float | None
    p90: float | None
    p99: float | None
    mean: float | None

    def to_json(self) -> dict[str, Any]:
        return _fields_json(self)


@dataclass(frozen=True, slots=True, kw_only=True)
class SloCheck:
    """One objective (``str(SLO)``), its measured percentile in seconds and the verdict."""

    slo: str
    value_s: float
    met: bool

    def to_json(self) -> dict[str, Any]:
        return _fields_json(self)


@dataclass(frozen=True, slots=True, kw_only=True)
class SimStats:
    """What only a simulation reports: engine counters, cost, energy, and the fleet it ran."""

    num_preemptions: int
    prefix_cache_hit_tokens: int
    cost_per_hour: float | None  # None: a device has no price
    cost_per_million_output_tokens: float | None
    energy_j: float
    energy_j_per_output_token: float | None
    utilization: tuple[float, ...]  # busy share of each replica
    num_replicas: int
    num_steps: int
    policy: str
    router: str
    overload: str | None  # a warning when queueing grows through the run
    host_copied_tokens: int = 0  # KV tokens copied between device and host: tier loads, swaps out and in

    def to_json(self) -> dict[str, Any]:
        return _fields_json(self)


@dataclass(frozen=True, slots=True, kw_only=True)
class BenchCounts:
    """What only a real server shows: failures by their own name, and outputs cut short."""

    num_failed: int
    failed_by_reason: dict[str, int]
    num_output_short: int  # finished with fewer tokens than requested
    output_tokens: int  # over finished requests


@dataclass(frozen=True, slots=True, kw_only=True)
class SimContext:
    """How a recorded simulation was set up, beyond what its result says (set by `runs.simulate_config`)."""

    workload: dict[str, Any]
    deployment: str
    prefill_replicas: int
    step_time_range_pct: float | None  # +- 1 s.d. of step times from a calibrated profile, else None
    # 10-90% ranges of the median latencies (seconds) the calibration residuals of the device kind imply
    ranges: dict[str, tuple[float, float]] = field(default_factory=dict)
    range_basis: str = ""

    def to_json(self) -> dict[str, Any]:
        return _fields_json(self)


@dataclass(frozen=True, slots=True, kw_only=True)
class BenchContext:
    """What a recorded bench ran against (set by `runs.run_bench`)."""

    workload: dict[str, Any]
    endpoint: str
    model: str
    ignore_eos: bool | None
    notes: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return _fields_json(self)


@dataclass(frozen=True, slots=True, kw_only=True)
class ClassSummary:
    """One class of a workload of several: judged by the SLOs, or (with a deadline) by when it finished."""

    name: str
    online: bool
    num_requests: int
    num_finished: int
    ttft_p90_s: float | None  # p90s over its finished requests
    tpot_p90_s: float | None
    e2e_p90_s: float | None
    throughput_output_tokens_per_s: float
    slo_attainment: float | None  # share of its requests within their objectives (None: it has none)
    deadline_s: float | None  # each request must finish within this of its arrival (None: none)
    last_finish_s: float | None  # when its last request finished, from the run's start (None: some never did)
    deadline_met: bool | None  # every request finished within the deadline (None: no deadline)

    def to_json(self) -> dict[str, Any]:
        return _fields_json(self)


@dataclass(frozen=True, slots=True, kw_only=True)
class Headline:
    """The numbers the planner ranks routers by, and plan.json lists for each router it simulated."""

    slos_met: bool
    slo_attainment: float | None
    ttft_p90_s: float | None
    tpot_p90_s: float | None
    num_rejected: int

    def to_json(self) -> dict[str, Any]:
        return _fields_json(self)


@dataclass(frozen=True, slots=True, kw_only=True)
class Summary:
    """A run's latency, throughput, goodput and SLO verdicts (the same for a simulation and a bench),
    plus the optional groups only one kind of run has."""

    num_requests: int
    num_finished: int
    num_rejected: int  # a bench counts every request that did not finish
    rejected_by_reason: dict[str, int]
    makespan_s: float  # a bench: its wall time
    ttft_s: Latency
    tpot_s: Latency
    itl_s: Latency
    e2e_s: Latency
    queue_delay_s: Latency
    throughput_output_tokens_per_s: float
    throughput_input_tokens_per_s: float
    throughput_requests_per_s: float
    goodput_requests_per_s: float
    slo_attainment: float | None  # None without SLOs
    slos: tuple[SloCheck, ...]
    slos_met: bool | None  # None without SLOs
    sim: SimStats | None = None
    bench: BenchCounts | None = None
    context: SimContext | BenchContext | None = None
    classes: tuple[ClassSummary, ...] = ()  # a workload of several classes: each one's figures

    @property
    def workload(self) -> dict[str, Any] | None:
        """The recorded run's workload description (None: not a recorded run)."""
        return None if self.context is None else self.context.workload

    @property
    def deployment(self) -> str | None:
        """A recorded simulation's deployment, in words (None for a bench, a plan or a bare summary)."""
        return self.context.deployment if isinstance(self.context, SimContext) else None

    @property
    def fairness_jain(self) -> float | None:
        """Jain's index of the classes' SLO attainment, (sum x)^2 / (n sum x^2): 1 when every class (tenant) is
        served alike, 1/n when one gets all (None: fewer than two classes with objectives)."""
        x = [c.slo_attainment for c in self.classes if c.slo_attainment is not None]
        squares = sum(v * v for v in x)
        return None if len(x) < 2 else sum(x) ** 2 / (len(x) * squares) if squares else 1.0

    def headline(self) -> Headline:
        return Headline(slos_met=bool(self.slos_met), slo_attainment=self.slo_attainment,
                        ttft_p90_s=self.ttft_s.p90, tpot_p90_s=self.tpot_s.p90, num_rejected=self.num_rejected)

    def to_json(self) -> dict[str, Any]:
        """The published dict, keys in their historical order (registry rows and ``--json`` keep it)."""
        out: dict[str, Any] = {"num_requests": self.num_requests, "num_finished": self.num_finished,
                               "num_rejected": self.num_rejected, "rejected_by_reason": dict(self.rejected_by_reason)}
        if self.bench is not None:
            out |= {"num_failed": self.bench.num_failed, "failed_by_reason": dict(self.bench.failed_by_reason)}
        out |= {
            "makespan_s": self.makespan_s,
            "ttft_s": self.ttft_s.to_json(),
            "tpot_s": self.tpot_s.to_json(),
            "itl_s": self.itl_s.to_json(),
            "e2e_s": self.e2e_s.to_json(),
            "queue_delay_s": self.queue_delay_s.to_json(),
            "throughput_output_tokens_per_s": self.throughput_output_tokens_per_s,
            "throughput_input_tokens_per_s": self.throughput_input_tokens_per_s,
            "throughput_requests_per_s": self.throughput_requests_per_s,
            "goodput_requests_per_s": self.goodput_requests_per_s,
            "slo_attainment": self.slo_attainment,
            "slos": [c.to_json() for c in self.slos],
            "slos_met": self.slos_met,
        }
        if self.classes:
            out["classes"] = [c.to_json() for c in self.classes]
            out["fairness_jain"] = self.fairness_jain
        if self.sim is not None:
            out |= self.sim.to_json()
        if self.bench is not None:
            out |= {"num_output_short": self.bench.num_output_short, "output_tokens": self.bench.output_tokens}
        if self.context is not None:
            out |= self.context.to_json()
        return out

    @classmethod
    def from_json(cls, d: object, source: str) -> Summary:
        """A summary read back from its JSON; ``source`` names the run or file in the error.

        Keys added over time (``overload``, ``num_failed``, ``prefill_replicas``, ...) may be missing
        from older runs; other keys are ignored (a registry row adds ``wall_s`` or the plan's cost).
        """
        r = _Reader(d, source)
        return cls(
            num_requests=r.whole("num_requests"), num_finished=r.whole("num_finished"),
            num_rejected=r.whole("num_rejected"), rejected_by_reason=r.counts("rejected_by_reason"),
            makespan_s=r.number("makespan_s"),
            ttft_s=r.latency("ttft_s"), tpot_s=r.latency("tpot_s"), itl_s=r.latency("itl_s"),
            e2e_s=r.latency("e2e_s"), queue_delay_s=r.latency("queue_delay_s"),
            throughput_output_tokens_per_s=r.number("throughput_output_tokens_per_s"),
            throughput_input_tokens_per_s=r.number("throughput_input_tokens_per_s"),
            throughput_requests_per_s=r.number("throughput_requests_per_s"),
            goodput_requests_per_s=r.number("goodput_requests_per_s"),
            slo_attainment=r.opt_number("slo_attainment"), slos=r.slo_checks("slos"),
            slos_met=r.opt_flag("slos_met"),
            sim=_sim_stats(r) if "policy" in r.d else None,
            bench=_bench_counts(r) if "output_tokens" in r.d else None,
            context=_bench_context(r) if "endpoint" in r.d else _sim_context(r) if "deployment" in r.d else None,
            classes=tuple(_class_summary(_Reader(c, source, f"classes[{i}]"))
                          for i, c in enumerate(r.get("classes", list, missing=[]))),
        )


def _class_summary(c: _Reader) -> ClassSummary:
    return ClassSummary(
        name=c.text("name"), online=c.get("online", bool), num_requests=c.whole("num_requests"),
        num_finished=c.whole("num_finished"), ttft_p90_s=c.opt_number("ttft_p90_s"),
        tpot_p90_s=c.opt_number("tpot_p90_s"), e2e_p90_s=c.opt_number("e2e_p90_s"),
        throughput_output_tokens_per_s=c.number("throughput_output_tokens_per_s"),
        slo_attainment=c.opt_number("slo_attainment"), deadline_s=c.opt_number("deadline_s"),
        last_finish_s=c.opt_number("last_finish_s"), deadline_met=c.opt_flag("deadline_met"))


def _sim_stats(r: _Reader) -> SimStats:
    return SimStats(
        num_preemptions=r.whole("num_preemptions"), prefix_cache_hit_tokens=r.whole("prefix_cache_hit_tokens"),
        cost_per_hour=r.opt_number("cost_per_hour"),
        cost_per_million_output_tokens=r.opt_number("cost_per_million_output_tokens"),
        energy_j=r.number("energy_j"), energy_j_per_output_token=r.opt_number("energy_j_per_output_token"),
        utilization=r.numbers("utilization"), num_replicas=r.whole("num_replicas"),
        num_steps=r.whole("num_steps"), policy=r.text("policy"), router=r.text("router"),
        overload=r.opt_text("overload", missing=None),
        host_copied_tokens=r.whole("host_copied_tokens", missing=0),  # summaries before host copies lack it
    )


def _bench_counts(r: _Reader) -> BenchCounts:
    """Bench runs from before ``num_failed`` counted their failures only under the simulator's name."""
    return BenchCounts(num_failed=r.whole("num_failed", missing=r.whole("num_rejected")),
                       failed_by_reason=r.counts("failed_by_reason", missing=r.counts("rejected_by_reason")),
                       num_output_short=r.whole("num_output_short"), output_tokens=r.whole("output_tokens"))


def _sim_context(r: _Reader) -> SimContext:
    """Simulations recorded before disaggregation, calibrated profiles or residual ranges lack the last keys."""
    ranges = r.mapping("ranges", missing={})
    return SimContext(workload=r.mapping("workload", missing={}), deployment=r.text("deployment"),
                      prefill_replicas=r.whole("prefill_replicas", missing=0),
                      step_time_range_pct=r.opt_number("step_time_range_pct", missing=None),
                      ranges={k: (float(v[0]), float(v[1])) for k, v in ranges.items()},
                      range_basis=r.text("range_basis", missing=""))


def _bench_context(r: _Reader) -> BenchContext:
    return BenchContext(workload=r.mapping("workload", missing={}), endpoint=r.text("endpoint"),
                        model=r.text("model", missing=""), ignore_eos=r.opt_flag("ignore_eos", missing=None),
                        notes=tuple(str(n) for n in r.get("notes", list, missing=[])))


_REQUIRED: Any = object()  # no ``missing`` value: the key must be there
_NUMBER = (int, float)


class _Reader:
    """Typed reads of one stored summary (or of one object inside it, ``at``): a key that is missing
    or of the wrong type is an InputError naming the source and the key, never a traceback later."""

    def __init__(self, d: object, source: str, at: str = "") -> None:
        if not isinstance(d, Mapping):
            raise InputError(f"{source}: the summary's '{at}' is {d!r:.60}, not a JSON object" if at else
                             f"{source}: its summary is not a JSON object but {d!r:.60}; "
                             "is it a simulate, bench or plan run?")
        self.d: Mapping[str, Any] = d
        self.source, self.at = source, at

    def get(self, key: str, kinds: type | tuple[type, ...], *, missing: Any = _REQUIRED,
            nullable: bool = False) -> Any:
        name = f"{self.at}.{key}" if self.at else key
        if key not in self.d:
            if missing is _REQUIRED:
                raise InputError(f"{self.source}: its summary has no '{name}'; is it a simulate, bench or plan run?")
            return missing
        v = self.d[key]
        return None if v is None and nullable else _checked(v, kinds, self.source, name)

    def inner(self, key: str) -> _Reader:
        """A reader of the object at ``key``."""
        return _Reader(self.get(key, Mapping), self.source, f"{self.at}.{key}" if self.at else key)

    def whole(self, key: str, *, missing: Any = _REQUIRED) -> int:
        v: int = self.get(key, int, missing=missing)
        return v

    def number(self, key: str) -> float:
        v: float = self.get(key, _NUMBER)
        return v

    def opt_number(self, key: str, *, missing: Any = _REQUIRED) -> float | None:
        v: float | None = self.get(key, _NUMBER, missing=missing, nullable=True)
        return v

    def text(self, key: str, *, missing: Any = _REQUIRED) -> str:
        v: str = self.get(key, str, missing=missing)
        return v

    def opt_text(self, key: str, *, missing: Any = _REQUIRED) -> str | None:
        v: str | None = self.get(key, str, missing=missing, nullable=True)
        return v

    def opt_flag(self, key: str, *, missing: Any = _REQUIRED) -> bool | None:
        v: bool | None = self.get(key, bool, missing=missing, nullable=True)
        return v

    def mapping(self, key: str, *, missing: Any = _REQUIRED) -> dict[str, Any]:
        return dict(self.get(key, Mapping, missing=missing))

    def counts(self, key: str, *, missing: Any = _REQUIRED) -> dict[str, int]:
        """A count per reason, in the stored order."""
        if key not in self.d and missing is not _REQUIRED:
            return dict(missing)
        inner = self.inner(key)
        return {k: inner.whole(k) for k in inner.d}

    def numbers(self, key: str) -> tuple[float, ...]:
        items = self.get(key, list)
        return tuple(_checked(x, _NUMBER, self.source, f"{key}[{i}]") for i, x in enumerate(items))

    def latency(self, key: str) -> Latency:
        m = self.inner(key)
        return Latency(p50=m.opt_number("p50", missing=None), p90=m.opt_number("p90", missing=None),
                       p99=m.opt_number("p99", missing=None), mean=m.opt_number("mean", missing=None))

    def slo_checks(self, key: str) -> tuple[SloCheck, ...]:
        checks = []
        for i, item in enumerate(self.get(key, list)):
            c = _Reader(item, self.source, f"{key}[{i}]")
            checks.append(SloCheck(slo=c.text("slo"), value_s=c.number("value_s"), met=c.get("met", bool)))
        return tuple(checks)


def _checked(v: object, kinds: type | tuple[type, ...], source: str, name: str) -> Any:
    """``v`` if it is of ``kinds`` (true and false are not numbers), else an InputError naming it."""
    if not isinstance(v, kinds) or (isinstance(v, bool) and kinds is not bool):
        raise InputError(f"{source}: the summary's '{name}' is {v!r:.60}, not {_name(kinds)}")
    return v


def _name(kinds: type | tuple[type, ...]) -> str:
    if kinds == _NUMBER:
        return "a number"
    names = {int: "a whole number", str: "a string", bool: "true or false", list: "a list", Mapping: "a JSON object"}
    return names.get(kinds, str(kinds)) if isinstance(kinds, type) else str(kinds)
