"""DeviceProfile: how close to its datasheet peak a device really runs.

Achievable = peak x efficiency. Defaults per device kind are deliberately
modest; `inferplan profile` and `inferplan calibrate` replace them with
measured values, written as a small YAML file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from inferplan.errors import InputError
from inferplan.fileio import write_text_atomic
from inferplan.specs.catalog import default_engine, fitted_profiles, local_profile_path, read_yaml
from inferplan.specs.engines import EngineSpec
from inferplan.specs.hardware import DeviceSpec


class DeviceProfile(BaseModel):
    """Efficiency factors of one device, default or measured."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    device: str = ""
    matmul_efficiency: float = Field(default=0.7, gt=0, le=1, description="large-matmul fraction of peak FLOP/s")
    matmul_efficiency_by_dtype: dict[str, float] = Field(
        default_factory=dict, description="large-matmul fraction of peak for the compute types whose kernels "
                                          "reach a different share than the 16-bit ones (fp8: scaled GEMMs)")
    bandwidth_efficiency_by_kernel: dict[str, float] = Field(
        default_factory=dict, description="fraction of peak bandwidth a kernel family's reads reach where it differs "
                                          "from bandwidth_efficiency (gguf: llama.cpp's block-quantized weight "
                                          "kernels; kv-unfused: KV reads of attention without flash attention)")
    matmul_half_tokens: float = Field(
        default=16.0, ge=0, description="rows at which a matmul reaches half its large-shape efficiency"
    )
    matmul_curve_exponent: float = Field(
        default=1.0, gt=0, le=4, description="steepness a of eff(T) = T^a / (T^a + half^a); measured CPUs ramp faster"
    )
    matmul_curve: tuple[tuple[float, float], ...] = Field(
        default=(), description="measured (rows, efficiency) points; when given, they replace the parametric curve"
    )
    attention_efficiency: float = Field(default=0.5, gt=0, le=1, description="fraction of peak in attention kernels")
    bandwidth_efficiency: float = Field(default=0.8, gt=0, le=1, description="fraction of peak memory bandwidth")
    link_efficiency: float = Field(default=0.7, gt=0, le=1, description="fraction of link bandwidth for collectives")
    step_overhead_s: float = Field(default=0.002, ge=0,
                                   description="per-step engine time: scheduling, launch, sampling")
    per_sequence_overhead_s: float = Field(default=2e-5, ge=0, description="per-sequence per-step host time")
    per_layer_kernel_floor_s: float = Field(
        default=0.0, ge=0, description="per-layer GPU time of the small kernels (norms, rotary, activation, "
                                       "residual adds) that does not shrink with the batch")
    request_overhead_s: float = Field(
        default=0.0, ge=0, description="per request, outside the engine loop: HTTP, tokenizing and streaming "
                                       "(added to TTFT and E2E)")
    per_layer_overhead_s: float = Field(
        default=0.0, ge=0, description="per-layer per-step dispatch time (eager frameworks; 0 under CUDA graphs)"
    )
    host_overlapped: bool = Field(
        default=False, description="the step and sequence host time overlaps the kernels (the engine schedules a "
                                   "step ahead): a step takes the longer of the two")
    source: str = "defaults by device kind"
    device_spec: DeviceSpec | None = Field(default=None, description="the measured device, for `--device local`")
    uncertainty: dict[str, float] = Field(default_factory=dict, description="relative standard errors of the fit")
    measurements: dict[str, Any] = Field(default_factory=dict, description="raw results the fit came from")

    def matmul_efficiency_of(self, dtype: str) -> float:
        """The large-matmul efficiency of kernels computing in ``dtype`` (or of a kernel family: gguf)."""
        return self.matmul_efficiency_by_dtype.get(dtype, self.matmul_efficiency)

    def bandwidth_efficiency_of(self, kernel: str | None) -> float:
        """The fraction of peak bandwidth reads reach under ``kernel`` (None: the plain figure)."""
        return self.bandwidth_efficiency_by_kernel.get(kernel or "", self.bandwidth_efficiency)

    @classmethod
    def default_for(cls, device: DeviceSpec, engine: EngineSpec | None = None) -> DeviceProfile:
        """The shipped profile of ``device`` under ``engine`` (its default engine if None): the kind's
        efficiencies and the engine's host overhead, replaced by the fitted entry for that kind and engine
        where `inferplan accuracy --fit` wrote one. For the measured ``local`` device, its profile file."""
        if device.name == "local" and local_profile_path().exists():
            return cls.load(local_profile_path())
        engine = engine or default_engine(device)
        host = engine.overhead_on(device.kind)
        values: dict[str, Any] = dict(_DEFAULTS[device.kind], step_overhead_s=host.step_s,
                                      per_sequence_overhead_s=host.per_sequence_s,
                                      request_overhead_s=host.request_s, host_overlapped=host.overlapped,
                                      source=f"defaults for {device.kind} devices under {engine.name}")
        fitted = fitted_profiles().get(f"{device.kind}/{engine.name}") or _backend_fit(device, engine)
        if fitted:
            values |= fitted
        return cls(device=device.name, **values)

    @classmethod
    def load(cls, path: Path) -> DeviceProfile:
        try:
            data = read_yaml(path.read_text())
            return cls.model_validate(data)
        except FileNotFoundError:
            raise InputError(f"{path}: no such profile file (create one with `inferplan profile`)") from None
        except (yaml.YAMLError, ValidationError) as exc:
            raise InputError(f"{path}: not a valid device profile: {exc}") from None

    def dump(self, path: Path) -> None:
        write_text_atomic(path, yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False))

    def resolve_device(self, name: str) -> DeviceSpec | None:
        """The device this profile measured, when ``name`` asks for it (``local``)."""
        return self.device_spec if name == "local" else None


def _backend_fit(device: DeviceSpec, engine: EngineSpec) -> dict[str, Any] | None:
    """llama.cpp's kernels are its backend's: an NVIDIA device of a kind without a fit of its own (Jetson, DGX
    Spark) runs the same CUDA kernels as the workstation cards the fit measured."""
    if engine.name == "llamacpp" and device.vendor == "NVIDIA" and device.kind == "edge-soc":
        return fitted_profiles().get(f"workstation-gpu/{engine.name}")
    return None


# Defaults: GPU numbers follow commonly reported fractions of peak for large GEMMs
# (~70%) and HBM streaming (~80%); CPU/SoC figures are lower because llama.cpp-class
# kernels reach less of peak. Host overheads are the engine's (catalog/engines.yaml).
# `inferplan accuracy --fit` replaces these where public measurements exist
# (catalog/profiles.yaml); `inferplan profile` replaces them for one machine.
# The five small kernels of a layer (two RMSNorms, rotary, activation, residual add) take 13-33 us at
# up to 16 tokens whatever the batch: median 19 us over Vidur's measured profiles of seven models on
# A100, A40 and H100 at TP 2-8 (microsoft/vidur data/profiling/compute/*/*/mlp.csv, commit 7d47513).
_GPU_KERNEL_FLOOR_S = 19e-6
_DEFAULTS: dict[str, dict[str, float | str]] = {
    "datacenter-gpu": dict(matmul_efficiency=0.7, matmul_half_tokens=16, attention_efficiency=0.5,
                           bandwidth_efficiency=0.8, per_layer_kernel_floor_s=_GPU_KERNEL_FLOOR_S),
    "workstation-gpu": dict(matmul_efficiency=0.65, matmul_half_tokens=16, attention_efficiency=0.45,
                            bandwidth_efficiency=0.8, per_layer_kernel_floor_s=_GPU_KERNEL_FLOOR_S),
    "apple-soc": dict(matmul_efficiency=0.6, matmul_half_tokens=8, attention_efficiency=0.4,
                      bandwidth_efficiency=0.75),
    "edge-soc": dict(matmul_efficiency=0.5, matmul_half_tokens=8, attention_efficiency=0.35,
                     bandwidth_efficiency=0.7),
    "cpu": dict(matmul_efficiency=0.5, matmul_half_tokens=4, attention_efficiency=0.3,
                bandwidth_efficiency=0.65),
    "phone-soc": dict(matmul_efficiency=0.4, matmul_half_tokens=4, attention_efficiency=0.3,
                      bandwidth_efficiency=0.6),
}
