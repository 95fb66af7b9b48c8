"""Workload transforms: each returns a new Workload."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from inferplan.errors import InputError
from inferplan.workload.request import Workload


def scale_time(wl: Workload, factor: float) -> Workload:
    """Stretch (factor > 1) or compress (factor < 1) arrival times; rate scales by 1/factor."""
    if factor <= 0:
        raise InputError(f"time scale must be positive, got {factor}")
    return replace(wl, arrival_s=wl.arrival_s * factor)


def scale_rate(wl: Workload, target_rate: float) -> Workload:
    """Compress or stretch time so the mean arrival rate becomes ``target_rate`` per second."""
    if target_rate <= 0:
        raise InputError(f"--rate must be positive, got {target_rate}")
    if len(wl) < 2 or wl.duration_s == 0:
        return wl
    return scale_time(wl, wl.mean_rate / target_rate)


def window(wl: Workload, start_s: float, end_s: float) -> Workload:
    """Requests arriving in [start_s, end_s), re-based to start at 0."""
    idx = np.nonzero((wl.arrival_s >= start_s) & (wl.arrival_s < end_s))[0]
    if idx.size == 0:
        raise InputError(f"no requests arrive between {start_s:g}s and {end_s:g}s of '{wl.name}'")
    sub = wl.take(idx)
    return replace(sub, arrival_s=sub.arrival_s - sub.arrival_s[0])


def head(wl: Workload, n: int) -> Workload:
    """The first ``n`` requests."""
    if n < 1:
        raise InputError(f"--num-requests must be at least 1, got {n}")
    return wl.take(np.arange(min(n, len(wl))))


def clip_lengths(wl: Workload, max_input: int | None = None, max_output: int | None = None) -> Workload:
    """Cap prompt and output lengths (a small local model has a short context; a benchmark a time budget)."""
    for flag, value in (("--max-input-tokens", max_input), ("--max-output-tokens", max_output)):
        if value is not None and value < 1:
            raise InputError(f"{flag} must be at least 1, got {value}")
    inp = wl.input_tokens if max_input is None else np.minimum(wl.input_tokens, max_input)
    out = wl.output_tokens if max_output is None else np.minimum(wl.output_tokens, max_output)
    return replace(wl, input_tokens=inp, output_tokens=out, prefix_tokens=np.minimum(wl.prefix_tokens, inp))


def mix(a: Workload, b: Workload, name: str = "mix") -> Workload:
    """Both workloads interleaved by arrival time; prefix groups and sessions kept apart."""
    offset_group = int(max(a.prefix_group.max(), -1)) + 1
    offset_session = int(max(a.session_id.max(), -1)) + 1
    return Workload.build(
        np.concatenate([a.arrival_s, b.arrival_s]),
        np.concatenate([a.input_tokens, b.input_tokens]),
        np.concatenate([a.output_tokens, b.output_tokens]),
        prefix_group=np.concatenate([a.prefix_group, np.where(b.prefix_group >= 0, b.prefix_group + offset_group, -1)]),
        prefix_tokens=np.concatenate([a.prefix_tokens, b.prefix_tokens]),
        session_id=np.concatenate([a.session_id, np.where(b.session_id >= 0, b.session_id + offset_session, -1)]),
        priority=np.concatenate([a.priority, b.priority]),
        online=np.concatenate([a.online, b.online]),
        name=name,
        source=f"mix of {a.name} and {b.name}",
    )
