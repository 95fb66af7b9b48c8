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


def mix(*parts: Workload, name: str = "mix", keep_classes: bool = False) -> Workload:
    """The workloads interleaved by arrival time, each one class (named after it, keeping its deadlines);
    prefix groups and sessions kept apart. Shared content (prefix chains) may come from one part only.
    ``keep_classes``: each part's own classes stay apart instead, named "PART/CLASS" where it has several."""
    chained = [p for p in parts if p.prefix_chain is not None]
    if len(chained) > 1:
        raise InputError(f"{name}: only one class of a mix may replay shared prompt content (a session preset "
                         f"or a Mooncake trace); {', '.join(p.name for p in chained)} all do")
    groups, sessions, classes = [], [], []
    names: list[str] = []
    targets: list[float] = []  # each class's minimum throughput (0: none)
    group_base = session_base = 0
    for k, p in enumerate(parts):
        groups.append(np.where(p.prefix_group >= 0, p.prefix_group + group_base, -1))
        sessions.append(np.where(p.session_id >= 0, p.session_id + session_base, -1))
        group_base += int(max(p.prefix_group.max(), -1)) + 1
        session_base += int(max(p.session_id.max(), -1)) + 1
        if keep_classes:
            classes.append(p.class_index + len(names))
            names += [p.name] if len(p.class_names) < 2 else [f"{p.name}/{c}" for c in p.class_names]
            targets += p.class_throughput
        else:
            classes.append(np.full(len(p), k))
            names.append(p.name)
            targets.append(max(p.class_throughput, default=0.0) if len(p.class_names) == 1 else 0.0)
    chain = chained[0] if chained else None
    return Workload.build(
        np.concatenate([p.arrival_s for p in parts]),
        np.concatenate([p.input_tokens for p in parts]),
        np.concatenate([p.output_tokens for p in parts]),
        prefix_group=np.concatenate(groups),
        prefix_tokens=np.concatenate([p.prefix_tokens for p in parts]),
        session_id=np.concatenate(sessions),
        priority=np.concatenate([p.priority for p in parts]),
        online=np.concatenate([p.online for p in parts]),
        name=name,
        source="mix of " + ", ".join(p.name for p in parts),
        # a part without shared content gets empty chains: its prompts match nothing cached
        prefix_chain=None if chain is None else tuple(c for p in parts for c in (p.prefix_chain or ((),) * len(p))),
        chain_block_tokens=chain.chain_block_tokens if chain else 512,
        chain_covers_outputs=chain.chain_covers_outputs if chain else False,
        class_index=np.concatenate(classes),
        class_names=tuple(names),
        class_throughput=tuple(targets),
        deadline_s=np.concatenate([p.deadline_s for p in parts]),
    )
