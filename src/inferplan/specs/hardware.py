"""DeviceSpec: datasheet facts of one accelerator or CPU, with where each came from.

Units live in field names. Peak FLOP/s are dense (no structured sparsity),
per dtype; a dtype a device has no fast path for is simply absent.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

DeviceKind = Literal["datacenter-gpu", "workstation-gpu", "apple-soc", "edge-soc", "cpu", "phone-soc"]
Dtype = Literal["fp32", "fp16", "bf16", "fp8", "int8", "int4", "fp4"]

GIB = 1024**3
GB = 1e9
TERA = 1e12


class DeviceSpec(BaseModel):
    """One device as a datasheet describes it; immutable."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    display_name: str = ""
    kind: DeviceKind
    vendor: str = ""
    aliases: tuple[str, ...] = ()
    memory_gib: float = Field(gt=0, description="on-device (or unified) memory capacity")
    usable_memory_fraction: float = Field(
        default=1.0, gt=0, le=1, description="share an accelerator may use (unified memory: the OS keeps the rest)"
    )
    memory_bw_gb_s: float = Field(gt=0, description="peak memory bandwidth, decimal GB/s")
    peak_tflops: dict[Dtype, float] = Field(description="dense peak per dtype, TFLOP/s (TOPS for integers)")
    fp16_accumulate_tflops: float | None = Field(
        default=None, gt=0, description="dense FP16 tensor peak with FP16 accumulate, where it exceeds the FP32-"
                                        "accumulate figure in peak_tflops (GeForce cards: twice); engines whose "
                                        "16-bit GEMMs accumulate in FP16 (llama.cpp's cuBLAS path) reach it")
    features: tuple[str, ...] = Field(default=(),
                                      description="fast kernels this device has: fp8, int8, int4, gguf, fp4")
    max_devices_per_node: int = Field(default=1, ge=1)
    intra_node_link_gb_s: float = Field(default=0.0, ge=0, description="per-device bidirectional link (NVLink etc.)")
    inter_node_link_gb_s: float = Field(default=0.0, ge=0, description="per-device network bandwidth between nodes")
    link_latency_us: float = Field(default=5.0, ge=0)
    host_load_gb_s: float = Field(default=10.0, gt=0, description="weights load bandwidth at cold start (storage/PCIe)")
    host_link_gb_s: float | None = Field(default=None, gt=0, description="host <-> device bandwidth, one direction "
                                                                          "(PCIe or C2C): what a CPU KV tier moves at")
    host_memory_gib: float | None = Field(default=None, gt=0, description="host memory per device in the node "
                                                                          "named by host_source")
    host_source: str | None = None
    idle_power_w: float = Field(default=0.0, ge=0)
    peak_power_w: float = Field(gt=0)
    power_cap_w: float | None = Field(default=None, gt=0, description="a power limit set on the device "
                                      "(nvidia-smi -pl): its compute clock falls to stay under it (perf/power.py)")
    price_per_hour_usd: float | None = Field(default=None, ge=0)
    price_date: str | None = None
    price_source: str | None = None
    source: str = Field(min_length=1, description="where the datasheet numbers come from")
    notes: str = ""

    @model_validator(mode="after")
    def _check(self) -> DeviceSpec:
        if not ({"bf16", "fp16", "fp32"} & set(self.peak_tflops)):
            raise ValueError("peak_tflops needs at least one of bf16, fp16, fp32")
        if (self.host_link_gb_s or self.host_memory_gib) and not self.host_source:
            raise ValueError("host_link_gb_s and host_memory_gib need host_source")
        if self.price_per_hour_usd is not None and not (self.price_date and self.price_source):
            raise ValueError("a price needs price_date and price_source")
        if self.power_cap_w is not None and self.power_cap_w <= self.idle_power_w:
            raise ValueError(f"a power cap of {self.power_cap_w:g} W is at or below the device's idle power "
                             f"({self.idle_power_w:g} W)")
        return self

    # ---- derived, in SI units ------------------------------------------------------
    @property
    def memory_bytes(self) -> float:
        return self.memory_gib * GIB

    @property
    def usable_memory_bytes(self) -> float:
        return self.memory_bytes * self.usable_memory_fraction

    @property
    def memory_bw_bytes_per_s(self) -> float:
        return self.memory_bw_gb_s * GB

    @property
    def host_load_bytes_per_s(self) -> float:
        return self.host_load_gb_s * GB

    def peak_flops(self, dtype: str) -> float:
        """Dense FLOP/s for a dtype; a 16-bit dtype falls back to the other 16-bit one, then fp32."""
        table = self.peak_tflops
        for candidate in (dtype, *_FALLBACK.get(dtype, ())):
            if candidate in table:
                return table[candidate] * TERA
        return table.get("fp32", 0.0) * TERA

    def peak_flops_fp16_accumulate(self) -> float:
        """The 16-bit peak of GEMMs that accumulate in FP16: the datasheet's figure, else the 16-bit peak."""
        return self.fp16_accumulate_tflops * TERA if self.fp16_accumulate_tflops else self.peak_flops("fp16")

    def has_fast(self, dtype: str) -> bool:
        return dtype in self.peak_tflops or dtype in self.features

    @property
    def is_gpu_like(self) -> bool:
        return self.kind in ("datacenter-gpu", "workstation-gpu")

    def tp_link_bytes_per_s(self) -> float:
        """One-direction bandwidth an all-reduce ring sees inside a node (half the bidirectional figure)."""
        return self.intra_node_link_gb_s * GB / 2


_FALLBACK: dict[str, tuple[str, ...]] = {
    "bf16": ("fp16", "fp32"),
    "fp16": ("bf16", "fp32"),
    "fp8": ("bf16", "fp16", "fp32"),
    "int8": ("fp16", "bf16", "fp32"),
    "int4": ("int8", "fp16", "bf16", "fp32"),
    "fp4": ("fp8", "bf16", "fp16", "fp32"),
}
