"""Fit llama.cpp's profile per device kind (one backend each: CUDA GPUs, Metal) to published llama-bench rows.

Seven numbers per kind, each a mechanism of the step-cost model: the 16-bit GEMM efficiency (F16
weights), the GGUF kernels' matmul efficiency, the memory-bandwidth efficiency of 16-bit weight
reads and of GGUF block reads, the host time per step and per layer per step (kernel launches: the
table's 8B and 80-layer 70B rows tell the two apart), and the bandwidth efficiency of the KV reads of
attention without flash attention (the table's build ran it unfused; its tg8192 rows slow down with
context far more than the KV bytes alone would make them). Least squares on log(predicted / measured)
over every pp and tg figure of the kind's devices that are not held out, soft-L1 so a few rows the
model cannot explain do not drag the rest. Nothing is fitted per row, model or length.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from inferplan.measure.accuracy import HOLDOUT_DEVICES
from inferplan.measure.llamacpp_cases import BenchRow, speed_cases
from inferplan.perf.deployment import Deployment
from inferplan.perf.profile import DeviceProfile

KINDS = ("workstation-gpu", "datacenter-gpu", "apple-soc")  # the kinds the table measures: CUDA, and Metal
FITTED = ("matmul_efficiency", "gguf_matmul_efficiency", "bandwidth_efficiency", "gguf_bandwidth_efficiency",
          "step_overhead_s", "per_layer_overhead_s", "kv_bandwidth_efficiency")
_START = np.array([0.5, 0.5, 0.8, 0.7, 1e-3, 2e-5, 0.7])
_LOW = np.array([0.05, 0.05, 0.3, 0.3, 0.0, 0.0, 0.05])
_HIGH = np.array([1.0, 1.0, 1.0, 1.0, 0.01, 5e-4, 1.0])
_SCALE = np.array([1.0, 1.0, 1.0, 1.0, 1e-3, 1e-4, 1.0])


@dataclass(frozen=True, slots=True)
class KindFit:
    kind: str
    values: dict[str, float]
    rows: int
    median_error_pct: float


def profile_fields(values: dict[str, float]) -> dict[str, object]:
    """The fitted numbers as DeviceProfile fields: the GGUF figures are entries keyed by the kernel family."""
    plain = {k: v for k, v in values.items() if not k.startswith("gguf_") and not k.startswith("kv_")}
    return plain | {"matmul_efficiency_by_dtype": {"gguf": values["gguf_matmul_efficiency"]},
                    "bandwidth_efficiency_by_kernel": {"gguf": values["gguf_bandwidth_efficiency"],
                                                              "kv-unfused": values["kv_bandwidth_efficiency"]}}


def _override(values: dict[str, float]) -> Callable[[Deployment], DeviceProfile]:
    return lambda dep: dep.device_profile.model_copy(update=profile_fields(values))


def fit_kind(kind: str, rows_for: Callable[[Callable[[Deployment], DeviceProfile] | None], list[BenchRow]],
             progress: Callable[[str], None] | None = None) -> KindFit:
    """Least squares over the rows of ``kind``'s devices that are not held out."""
    from scipy.optimize import least_squares  # noqa: PLC0415

    say = progress or (lambda _msg: None)

    def residuals(scaled: np.ndarray) -> np.ndarray:
        values = dict(zip(FITTED, (scaled * _SCALE).tolist(), strict=True))
        rows = [r for r in rows_for(_override(values)) if r.deployment.device.kind == kind
                and r.deployment.device.name not in HOLDOUT_DEVICES]
        return np.log([c.predicted / c.measured for c in speed_cases(rows)])

    sol = least_squares(residuals, _START / _SCALE, bounds=(_LOW / _SCALE, _HIGH / _SCALE), loss="soft_l1",
                        f_scale=0.1, diff_step=0.01)
    values = {k: float(f"{v:.3g}") for k, v in zip(FITTED, sol.x * _SCALE, strict=True)}
    final = np.abs(np.expm1(sol.fun))
    say(f"llama.cpp on {kind}: {values} (median error {100 * np.median(final):.1f}% over {final.size} figures)")
    return KindFit(kind, values, int(final.size), round(float(np.median(final)) * 100, 1))
