"""Which kernels a deployment's matmuls run, and the rates they reach: the compute dtype, a slow-path factor
where the device has no fast kernel for the format, and the dense and routed-expert rates apart where a format
stores the experts only (gpt-oss's MXFP4: the rest of the model multiplies in 16-bit)."""

from __future__ import annotations

from dataclasses import dataclass

from inferplan.perf.deployment import Deployment
from inferplan.perf.power import clock_ratio

_PLAIN_GGUF = (None, "F16", "BF16", "F32")


def gguf_blocks(dep: Deployment) -> bool:
    """Whether llama.cpp serves the weights as quantized GGUF blocks (any block type but 16/32-bit floats)."""
    return dep.serving_engine.name == "llamacpp" and dep.weights.llamacpp_type not in _PLAIN_GGUF


def kernel_path(dep: Deployment) -> tuple[str, float, str | None]:
    """(compute dtype, slow-path factor, kernel family) of the deployment's matmuls: the format's fast kernel
    where the device has it, else its fallback; under llama.cpp every block type runs its GGUF kernels."""
    fmt, dev = dep.weights, dep.device
    if gguf_blocks(dep):
        return "fp16", 1.0, "gguf"
    if fmt.is_fast_on(dev.kind, dev.features) and dev.has_fast(fmt.compute_dtype):
        return fmt.compute_dtype, 1.0, fmt.kernel
    return fmt.fallback_dtype, fmt.slow_path_efficiency, None


@dataclass(frozen=True, slots=True)
class LinearRates:
    """FLOP/s of the dense linears at large shapes, the routed experts' rate relative to it, the matrix-vector
    floor, and the compute dtype (attention runs in fp32 only for an fp32 model)."""

    dense_flops_per_s: float
    expert_scale: float
    vector_flops_per_s: float
    dtype: str
    kernel: str | None


def linear_rates(dep: Deployment) -> LinearRates:
    dtype, slow, kernel = kernel_path(dep)
    rate, vector = _rate(dep, dtype, slow, kernel)
    if not dep.weights.experts_only:
        return LinearRates(rate, 1.0, vector, dtype, kernel)
    dense, dense_vector = _rate(dep, "bf16", 1.0, None)
    return LinearRates(dense, rate / dense, dense_vector, "bf16", kernel)


def _rate(dep: Deployment, dtype: str, slow: float, kernel: str | None) -> tuple[float, float]:
    """(large-matmul FLOP/s, matrix-vector FLOP/s) of kernels computing in ``dtype``. A measured curve holds the
    absolute efficiency by rows, so the rate is the peak; the vector floor is then not used."""
    dev, prof, engine = dep.device, dep.device_profile, dep.serving_engine
    eff = prof.matmul_efficiency_of(kernel or dtype)
    peak = dev.peak_flops_fp16_accumulate() if engine.fp16_accumulate and dtype == "fp16" else dev.peak_flops(dtype)
    clock = clock_ratio(dev)  # a power cap slows compute, not memory
    if prof.matmul_curve:
        return peak * slow * clock, 0.0
    # few rows run as matrix-vector kernels at the FP32 vector rate, not in half-empty tensor tiles
    return peak * eff * slow * clock, dev.peak_flops("fp32") * eff * slow * clock
