"""Vidur's measured GEMM times against the shipped matmul curve: the four projections of a layer by token count
and TP degree, on A100, A40 and H100 (microsoft/vidur data/profiling/compute/*/*/mlp.csv, commit 7d47513, MIT).

A check, never fitted. Each row is one layer of a model at one TP degree: the attention input projection
(QKV), its output projection, the MLP's up (and gate) projection and its down projection, as Vidur timed them
with PyTorch (cuBLAS) kernels, median of its repetitions. The prediction prices the same weights the way
``StepCost`` prices a dense step: ``max(flops / (peak x eff x curve(rows)), bytes / (bandwidth x eff))`` with
the device's shipped profile. Phases split the rows by token count, where the curve's shape shows.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from inferplan.errors import InputError
from inferplan.perf.resolve import resolve_deployment
from inferplan.perf.step_cost import StepCost

DATASET = "vidur-gemm"
# Vidur's profile folders: A100 80GB SXM (DGX), A40, H100 80GB SXM (DGX)
DEVICES = {"a100": "a100-80gb", "a40": "a40", "h100": "h100-sxm"}
PROJECTIONS = ("attn_pre_proj", "attn_post_proj", "mlp_up_proj", "mlp_down_proj")
_COLUMNS = ("n_head", "n_kv_head", "n_embd", "n_expanded_embd", "use_gated_mlp", "num_tokens",
            "num_tensor_parallel_workers", *(f"time_stats.{p}.median" for p in PROJECTIONS))
TOKEN_BANDS = ((1, 64, "gemm 1-63 rows"), (64, 1024, "gemm 64-1023 rows"), (1024, 1 << 30, "gemm 1024+ rows"))


@dataclass(frozen=True, slots=True)
class GemmPoint:
    device: str  # catalog name
    model: str  # Vidur's folder name
    tp: int
    tokens: int
    params: float  # weights of the four projections on one device
    seconds: float  # their measured time, summed


def read_gemm_points(compute_dir: Path) -> list[GemmPoint]:
    """Every row of every ``<device>/<org>/<model>/mlp.csv`` under ``compute_dir``; a missing column is an error."""
    points = []
    for folder, device in sorted(DEVICES.items()):
        for path in sorted((compute_dir / folder).glob("*/*/mlp.csv")):
            with path.open(newline="") as f:
                reader = csv.DictReader(f)
                missing = [c for c in _COLUMNS if c not in (reader.fieldnames or ())]
                if missing:
                    raise InputError(f"{path}: missing column(s) {', '.join(missing)}; expected Vidur's mlp.csv")
                points += [_point(row, device, path.parent.name) for row in reader]
    return points


def _point(row: dict[str, str], device: str, model: str) -> GemmPoint:
    hidden, inter = int(row["n_embd"]), int(row["n_expanded_embd"])
    heads, kv_heads, tp = int(row["n_head"]), int(row["n_kv_head"]), int(row["num_tensor_parallel_workers"])
    head_dim = hidden // heads
    gates = 2 if row["use_gated_mlp"].strip().lower() == "true" else 1
    params = (hidden * (heads + 2 * kv_heads) * head_dim + heads * head_dim * hidden
              + gates * hidden * inter + inter * hidden) / tp
    seconds = sum(float(row[f"time_stats.{p}.median"]) for p in PROJECTIONS) * 1e-3
    return GemmPoint(device, model, tp, int(row["num_tokens"]), params, seconds)


def gemm_cases(points: list[GemmPoint]) -> Iterator[tuple[str, str, str, float, float]]:
    """(device, phase, label, measured s, predicted s) per point, priced with the device's shipped profile."""
    costs: dict[str, StepCost] = {}
    for p in points:
        cost = costs.get(p.device)
        if cost is None:  # a bf16 probe deployment: the device's 16-bit matmul rate, curve and bandwidth
            cost = costs[p.device] = StepCost(resolve_deployment("llama-3.1-8b", p.device, weights="bf16"))
        rate = max(cost.linear_flops_per_s * cost.matmul_eff(p.tokens), cost.vector_flops_per_s)
        predicted = max(2 * p.tokens * p.params / rate, 2 * p.params / cost.bw)
        phase = next(name for lo, hi, name in TOKEN_BANDS if lo <= p.tokens < hi)
        yield p.device, phase, f"{p.model} TP{p.tp} {p.tokens} tokens", p.seconds, predicted
