"""llama-bench's tests priced by the step-cost model: ``ppN`` and ``tgN`` as llama-bench runs them.

``ppN`` decodes an N-token prompt in logical batches of ``n_batch`` tokens, each split into
``n_ubatch`` physical batches that attend to everything before them; only the last token's
logits are computed. ``tgN`` generates N tokens one at a time from an empty cache. Both report
tokens per second (tools/llama-bench/llama-bench.cpp test_prompt, test_gen).

Several GPUs split the layers (``-sm layer``, the default): a token visits the devices in turn,
so a decode costs what one device holding every layer would (the devices' bandwidths are used
one after another); a prompt's ubatches are pipelined over them within one logical batch
(ggml-backend's scheduler keeps ``GGML_SCHED_MAX_COPIES`` copies of the inputs), so a batch of
u ubatches over k devices takes (u + k - 1) stage times of a k-th of a ubatch each.
"""

from __future__ import annotations

from dataclasses import dataclass

from inferplan.perf.step_cost import StepCost, batch_shape

N_BATCH, N_UBATCH = 2048, 512  # llama-bench's defaults (common/common.h n_batch, n_ubatch)


@dataclass(frozen=True, slots=True)
class BenchSetup:
    """What a llama-bench run fixed: the logical and physical batch, and how many devices split the layers."""

    n_batch: int = N_BATCH
    n_ubatch: int = N_UBATCH
    devices: int = 1


def prompt_tokens_per_s(cost: StepCost, n: int, setup: BenchSetup = BenchSetup(), depth: int = 0) -> float:
    """``ppN`` (``@ dD``: after ``depth`` tokens in the cache, which llama-bench does not time): prompt tokens
    per second."""
    total, done = 0.0, 0
    while done < n:
        batch = min(setup.n_batch, n - done)
        ubatches = []
        for start in range(0, batch, setup.n_ubatch):
            size = min(setup.n_ubatch, batch - start)
            last = done + start + size >= n
            shape = batch_shape([(size, depth + done + start)], window=cost.window, prefills_completing=int(last))
            ubatches.append(cost.seconds(shape))
        total += _pipelined(ubatches, setup.devices)
        done += batch
    return n / total


def _pipelined(stage_totals: list[float], devices: int) -> float:
    """Seconds for ubatches whose whole-model times are ``stage_totals`` through ``devices`` pipeline stages:
    the last ubatch leaves after every ubatch's stage time plus the pipeline's fill."""
    if devices == 1 or len(stage_totals) == 1:
        return sum(stage_totals)
    stage = [t / devices for t in stage_totals]
    return sum(stage) + (devices - 1) * max(stage)


def generate_tokens_per_s(cost: StepCost, n: int, depth: int = 0) -> float:
    """``tgN`` (``@ dD``: after ``depth`` tokens in the cache): generated tokens per second.

    Decode cost is linear in the context between regime changes, so it is priced at a handful of
    contexts and summed by the trapezoid rule: exact for a linear cost, and for the kinked
    max(compute, bandwidth) within a token per segment."""
    points = min(n, 9)
    edges = [depth + round(i * (n - 1) / max(1, points - 1)) for i in range(points)]
    times = [cost.decode_seconds(1, c) for c in edges]
    total = 0.0
    for i in range(1, points):
        span = edges[i] - edges[i - 1]
        total += span * (times[i] + times[i - 1]) / 2
    total += (times[0] + times[-1]) / 2 if points > 1 else times[0]
    return n / total


def test_tokens(test: str) -> tuple[str, int]:
    """``pp512`` -> ("pp", 512); ``tg128`` -> ("tg", 128)."""
    kind, digits = test[:2], test[2:]
    if kind not in ("pp", "tg") or not digits.isdigit():
        raise ValueError(f"not a llama-bench test name: {test!r} (expected ppN or tgN)")
    return kind, int(digits)
