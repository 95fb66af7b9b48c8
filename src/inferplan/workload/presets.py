"""Named workload presets and the one function that turns a --workload argument into a Workload.

Length parameters of `chat` and `code` are log-normal fits (mean and standard
deviation of log tokens) to the Azure LLM inference trace 2023 (conversation and
code services, Splitwise, ISCA 2024); their default rates are the traces' mean
rates (5.5 and 2.6 requests/s). `summarize` and `batch` are chosen shapes, not fits.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from inferplan.errors import InputError, unknown_name
from inferplan.workload.classes import ClassSpec, read_client_spec, split_classes
from inferplan.workload.request import Workload
from inferplan.workload.sessions import SESSION_PRESETS, synthesize_sessions
from inferplan.workload.synthetic import Lengths, synthesize
from inferplan.workload.traces import load_trace
from inferplan.workload.transforms import clip_lengths, head, mix, scale_rate, scale_time, window


@dataclass(frozen=True, slots=True)
class Preset:
    description: str
    rate: float
    inputs: Lengths
    outputs: Lengths
    arrivals: str = "poisson"
    online: bool = True
    priority: int = 0
    cv: float = 3.0  # gamma arrivals: coefficient of variation of the gaps
    period_s: float | None = None  # diurnal arrivals: one cycle (None: the whole run)


# Azure 2023 conversation trace fits, shared by every chat-shaped preset.
CHAT_INPUT = Lengths("lognormal", 6.633, 0.985, low=2, high=14_050)
CHAT_OUTPUT = Lengths("lognormal", 5.019, 0.859, low=1, high=1_000)

PRESETS: dict[str, Preset] = {
    "chat": Preset(
        "conversation: Azure 2023 conv fit (input median ~760, output median ~150)",
        5.5,
        CHAT_INPUT,
        CHAT_OUTPUT,
    ),
    "code": Preset(
        "code completion: Azure 2023 code fit (long prompts, short outputs)",
        2.6,
        Lengths("lognormal", 6.999, 1.360, low=3, high=7_437),
        Lengths("lognormal", 2.788, 0.847, low=1, high=1_899),
    ),
    "summarize": Preset(
        "long-document summarization (chosen shape: ~3k-token inputs, ~200-token outputs)",
        2.0,
        Lengths("lognormal", 8.0, 0.5, low=256, high=16_000),
        Lengths("lognormal", 5.3, 0.5, low=16, high=1_024),
    ),
    "batch": Preset(
        "offline batch: everything arrives at once, lower priority, longer outputs",
        1.0,
        CHAT_INPUT,
        Lengths("lognormal", 5.7, 0.6, low=1, high=2_048),
        arrivals="burst",
        online=False,
        priority=1,
    ),
    "diurnal-chat": Preset(
        "chat lengths with one daily rate cycle (+/-60% around the mean) compressed into the simulated duration",
        5.5,
        CHAT_INPUT,
        CHAT_OUTPUT,
        arrivals="diurnal",
    ),
    "bursty-chat": Preset(
        "chat lengths with Gamma arrivals, coefficient of variation 3",
        5.5,
        CHAT_INPUT,
        CHAT_OUTPUT,
        arrivals="gamma",
    ),
}


# Several clients at once (ServeGen, P150: a workload is composed client by client). Rates and the
# coefficients of variation of the gaps between arrivals were computed on the carried Azure LLM inference
# traces of 2023 (one hour each): conversation 5.53 req/s, CV 1.09 (near Poisson); code 2.57 req/s,
# CV 13.2 (bursts: a per-minute rate CV of 1.03, the busiest minute 4.3x the mean).
CLIENT_PRESETS: dict[str, tuple[str, ...]] = {
    "multi-client": ("chat:name=conversation,rate=5.53,arrivals=gamma,cv=1.09",
                     "code:name=code,rate=2.57,arrivals=gamma,cv=13.2"),
}


def make_workload(
    spec: str,
    *,
    seed: int = 0,
    rate: float | None = None,
    rate_scale: float | None = None,
    duration_s: float | None = None,
    num_requests: int | None = None,
    skip_bad_rows: bool = False,
    trace_format: str | None = None,
    max_input_tokens: int | None = None,
    max_output_tokens: int | None = None,
    session_turns: int | None = None,
    think_time_s: float | None = None,
) -> Workload:
    """A preset name or a trace path, then transforms: rate, rate scale, time window, first N, length caps.
    ``session_turns``/``think_time_s``: for a session preset (multi-turn, agentic), every session that many
    turns and that median gap between turns.

    For a preset, the number of requests is ``num_requests``, or what ``rate x duration``
    implies (default 600 s). For a trace, ``duration_s`` keeps the first that many seconds.
    ``spec`` may name several classes with their own options (``workload.classes``): see ``make_mix``.
    """
    if spec in CLIENT_PRESETS:
        spec = " + ".join(CLIENT_PRESETS[spec])
    classes = read_client_spec(Path(spec)) if spec.endswith((".yaml", ".yml")) else split_classes(spec)
    if len(classes) > 1 or classes[0].has_options:
        return make_mix(classes, seed=seed, rate=rate, rate_scale=rate_scale, duration_s=duration_s,
                        num_requests=num_requests, skip_bad_rows=skip_bad_rows, trace_format=trace_format,
                        max_input_tokens=max_input_tokens, max_output_tokens=max_output_tokens,
                        session_turns=session_turns, think_time_s=think_time_s)
    _check_positive(rate=rate, rate_scale=rate_scale, duration=duration_s, num_requests=num_requests,
                    max_input_tokens=max_input_tokens, max_output_tokens=max_output_tokens)
    _check_positive(session_turns=session_turns)
    if think_time_s is not None and not think_time_s >= 0:
        raise InputError(f"--think-time must be 0 or more seconds, got {think_time_s:g}")
    if (session_turns is not None or think_time_s is not None) and spec not in SESSION_PRESETS:
        raise InputError(f"--session-turns and --think-time shape session presets ({', '.join(SESSION_PRESETS)}), "
                         f"not '{spec}'")
    rng = np.random.default_rng(seed)
    if spec in SESSION_PRESETS:
        shape = SESSION_PRESETS[spec]
        lam = (shape.rate if rate is None else rate) * (rate_scale or 1.0)
        n = num_requests or max(1, int(round(lam * (600.0 if duration_s is None else duration_s))))
        wl = synthesize_sessions(rng, shape, n=n, rate=lam, name=spec, turns=session_turns, think_s=think_time_s)
        return clip_lengths(wl, max_input_tokens, max_output_tokens)
    if spec in PRESETS:
        wl = preset_workload(PRESETS[spec], spec, rng, rate=rate, rate_scale=rate_scale, duration_s=duration_s,
                             num_requests=num_requests)
        return clip_lengths(wl, max_input_tokens, max_output_tokens)
    path = Path(spec)
    if not path.exists() and not any(sep in spec for sep in "/\\."):
        known = [*PRESETS, *SESSION_PRESETS, *CLIENT_PRESETS]
        raise unknown_name("workload", spec, known, hint=f"presets: {', '.join(known)}; or a trace file path")
    wl = load_trace(path, fmt=trace_format, skip_bad_rows=skip_bad_rows)
    if rate is not None:
        wl = scale_rate(wl, rate)
    if rate_scale is not None:
        wl = scale_time(wl, 1.0 / rate_scale)
    if duration_s is not None:
        wl = window(wl, 0.0, duration_s)
    if num_requests is not None:
        wl = head(wl, num_requests)
    return clip_lengths(wl, max_input_tokens, max_output_tokens)


def preset_workload(p: Preset, name: str, rng: np.random.Generator, *, rate: float | None, rate_scale: float | None,
                    duration_s: float | None, num_requests: int | None) -> Workload:
    """A preset's requests: ``num_requests`` of them, or what ``rate x duration`` implies (default 600 s)."""
    lam = p.rate if rate is None else rate
    if rate_scale is not None:
        lam *= rate_scale
    n = num_requests or max(1, int(round(lam * (600.0 if duration_s is None else duration_s))))
    return synthesize(rng, n=n, rate=lam, inputs=p.inputs, outputs=p.outputs, arrivals=p.arrivals, cv=p.cv,
                      name=name, online=p.online, priority=p.priority, period_s=p.period_s or n / lam)


def shaped(p: Preset, c: ClassSpec) -> Preset:
    """The preset with a class's own arrivals and length medians (each length keeps its spread and bounds)."""
    return replace(p, arrivals=c.arrivals or p.arrivals, cv=c.cv or p.cv, period_s=c.period_s or p.period_s,
                   inputs=_with_median(p.inputs, c.input_median), outputs=_with_median(p.outputs, c.output_median))


def _with_median(lengths: Lengths, median: int | None) -> Lengths:
    if median is None:
        return lengths
    if lengths.kind == "lognormal":
        return replace(lengths, a=float(np.log(median)), high=max(lengths.high, median))
    return Lengths("fixed", float(median), low=1, high=max(lengths.high, median))


def make_mix(classes: list[ClassSpec], *, seed: int, rate: float | None, rate_scale: float | None,
             duration_s: float | None, num_requests: int | None, **shared: object) -> Workload:
    """Each class built with its own options, then interleaved. A class sized by neither ``count`` nor
    ``duration`` runs for ``duration_s``, else as long as the longest deadline (the window in which the
    fleet serves every class at once), else 600 s. ``shared``: options every class takes alike."""
    if len(classes) > 1 and (rate is not None or rate_scale is not None or num_requests is not None):
        raise InputError("with several --workload classes, give each its own rate or count "
                         "(e.g. --workload chat:rate=10 --workload batch:count=5000,deadline=6h), "
                         "not --rate, --rate-scale or --num-requests")
    for c in classes:
        if (c.rate is not None and rate is not None) or (c.count is not None and num_requests is not None):
            raise InputError(f"--workload '{c.source}': its rate or count is given both in the class and as a flag")
    deadlines = [c.deadline_s for c in classes if c.deadline_s is not None]
    horizon = duration_s if duration_s is not None else max(deadlines, default=None)
    parts, names = [], []
    for k, c in enumerate(classes):
        size = {"rate": c.rate if c.rate is not None else rate, "rate_scale": rate_scale,
                "duration_s": c.duration_s or (None if c.count else horizon), "num_requests": c.count or num_requests}
        if c.shapes:
            if c.source not in PRESETS:
                raise InputError(f"--workload '{c.source}': arrivals, cv, period, input and output shape a preset "
                                 f"({', '.join(PRESETS)}), not a trace or a session preset")
            wl = clip_lengths(preset_workload(shaped(PRESETS[c.source], c), c.source, np.random.default_rng(seed + k),
                                              **size),  # type: ignore[arg-type]
                              shared.get("max_input_tokens"), shared.get("max_output_tokens"))  # type: ignore[arg-type]
        else:
            wl = make_workload(c.source, seed=seed + k, **size, **shared)  # type: ignore[arg-type]
        name = c.name or (Path(c.source).stem if c.source not in PRESETS and c.source not in SESSION_PRESETS
                          else c.source)
        name = name if name not in names else f"{name}#{k + 1}"
        n = len(wl)
        deadline = wl.deadline_s if c.deadline_s is None else np.full(n, c.deadline_s)
        wl = replace(wl, name=name, class_names=(name,), class_throughput=(c.throughput or 0.0,),
                     priority=wl.priority if c.priority is None else np.full(n, c.priority, dtype=np.int64),
                     deadline_s=deadline if c.throughput is None else throughput_deadlines(wl, c.throughput))
        parts.append(wl)
        names.append(name)
    return parts[0] if len(parts) == 1 else mix(*parts, name=" + ".join(names))


def throughput_deadlines(wl: Workload, tokens_per_s: float) -> np.ndarray:
    """Per request, the deadline that serving the class at ``tokens_per_s`` output tokens/s implies: every
    request done by the first arrival plus all the output tokens over that rate."""
    end = float(wl.arrival_s.min()) + float(wl.output_tokens.sum()) / tokens_per_s
    if end <= float(wl.arrival_s.max()):
        arriving = float(wl.output_tokens.sum()) / max(float(np.ptp(wl.arrival_s)), 1e-9)
        raise InputError(f"--workload {wl.name}: throughput={tokens_per_s:g} is above the rate its output tokens "
                         f"arrive at ({arriving:,.0f} tokens/s): no fleet serves work faster than it comes; lower "
                         "it, or queue the class at once (count= with the batch preset)")
    deadlines: np.ndarray = end - wl.arrival_s
    return deadlines


def _check_positive(**values: float | None) -> None:
    """Zero or a negative rate, duration or count is a mistake, never a cue to use a default."""
    for name, value in values.items():
        if value is not None and not value > 0:  # `not >` also rejects NaN
            flag = "--" + name.replace("_", "-")
            raise InputError(f"{flag} must be positive, got {value:g}; leave it out for the default")


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkloadSpec:
    """Which requests: a preset or a trace, and the transforms applied to it.

    The base of every run's configuration (simulate, plan, bench), so they read a
    workload the same way and record it under the same names.
    """

    workload: str = "chat"
    rate: float | None = None
    rate_scale: float | None = None
    duration_s: float | None = None
    num_requests: int | None = None
    seed: int = 0
    skip_bad_rows: bool = False
    trace_format: str | None = None
    max_input_tokens: int | None = None
    max_output_tokens: int | None = None
    session_turns: int | None = None  # session presets: turns per session (None: the preset's distribution)
    think_time_s: float | None = None  # session presets: median gap between a session's turns

    def build_workload(self) -> Workload:
        return make_workload(self.workload, seed=self.seed, rate=self.rate, rate_scale=self.rate_scale,
                             duration_s=self.duration_s, num_requests=self.num_requests,
                             skip_bad_rows=self.skip_bad_rows, trace_format=self.trace_format,
                             max_input_tokens=self.max_input_tokens, max_output_tokens=self.max_output_tokens,
                             session_turns=self.session_turns, think_time_s=self.think_time_s)


def workload_names() -> list[str]:
    """Every preset `--workload` takes by name: single-class, session and client presets."""
    return [*PRESETS, *SESSION_PRESETS, *CLIENT_PRESETS]
