"""All-reduce time from message size: a latency term plus the bytes on the wire, by the algorithm used.

A tensor-parallel replica all-reduces every layer's attention and MLP output. The ring formula alone
(``2 (n-1)/n x bytes / bandwidth``) prices those as nearly free at decode, where a message is a few
KiB; measured NCCL all-reduces cost 17-40 us each there (Vidur's H100 and A100 DGX profiles), and
an engine's own one-shot kernel for small messages 4-10 us (sgl-project/sglang PR #2904). Which one
runs is the engine's rule: vLLM and SGLang take their custom kernel up to 8 MiB on NVLink-connected
GPUs (and on PCIe only at two GPUs); TensorRT-LLM's AUTO strategy takes its min-latency kernel up to
128 tokens and NCCL above. NCCL's latency and bus bandwidth per worker count are fitted to
measurements (``catalog/collectives.yaml``, written by ``inferplan accuracy --fit``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from types import MappingProxyType

from pydantic import BaseModel, ConfigDict, Field

from inferplan.specs.catalog import catalog_yaml
from inferplan.specs.engines import EngineSpec
from inferplan.specs.hardware import DeviceSpec

# a per-device link above PCIe 5.0 x16 (128 GB/s both ways) is NVLink, NVSwitch or Infinity Fabric: full mesh
_MESH_LINK_GB_S = 128.0


class NcclFit(BaseModel):
    """NCCL all-reduce on one node of a device type: latency and bus bandwidth by worker count."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    applies_to: tuple[str, ...] = ()
    latency_us: dict[int, float] = Field(description="seconds of a tiny all-reduce, by number of devices")
    bus_gb_s: dict[int, float] = Field(default_factory=dict, description="bus bandwidth, by number of devices")
    bus_efficiency: float = Field(default=0.7, gt=0, le=1,
                                  description="where bus_gb_s has no entry: this fraction of the one-way link")
    median_error_pct: float | None = None
    source: str = Field(min_length=1)

    def at(self, n: int) -> tuple[float, float | None]:
        """(latency s, bus bytes/s or None) for ``n`` devices: the largest measured count not above ``n``."""
        key = max((k for k in self.latency_us if k <= n), default=min(self.latency_us))
        bus = self.bus_gb_s.get(max((k for k in self.bus_gb_s if k <= n), default=key)) if self.bus_gb_s else None
        return self.latency_us[key] * 1e-6, bus * 1e9 if bus else None


@cache
def nccl_fits() -> MappingProxyType[str, NcclFit]:
    raw = catalog_yaml("collectives.yaml").get("nccl_allreduce", {})
    return MappingProxyType({name: NcclFit.model_validate(v) for name, v in raw.items()})


def nccl_fit_for(device: DeviceSpec) -> NcclFit:
    """The fitted entry that names the device (or its own name), else the generic one ("*")."""
    fits = nccl_fits()
    for name, fit in fits.items():
        if device.name == name or device.name in fit.applies_to:
            return fit
    return fits["*"]


@dataclass(frozen=True, slots=True)
class AllReduce:
    """One all-reduce over ``n`` devices: ``latency + 2 (n-1)/n x bytes / bus``, the latency being the engine's
    small-message kernel's up to ``custom_max_bytes`` and NCCL's above."""

    n: int
    nccl_latency_s: float
    bus_bytes_per_s: float
    custom_latency_s: float = 0.0
    custom_max_bytes: float = 0.0

    def seconds(self, size_bytes: float) -> float:
        if self.n < 2 or size_bytes <= 0:
            return 0.0
        latency = self.custom_latency_s if size_bytes <= self.custom_max_bytes else self.nccl_latency_s
        return latency + 2.0 * (self.n - 1) / self.n * size_bytes / self.bus_bytes_per_s


def allreduce_for(device: DeviceSpec, engine: EngineSpec, n: int, bytes_per_token: float) -> AllReduce:
    """The all-reduce a replica of ``n`` devices runs under ``engine`` (``bytes_per_token``: one token's
    activation, to turn a token limit into bytes)."""
    fit = nccl_fit_for(device)
    latency, bus = fit.at(n)
    bus = bus or device.tp_link_bytes_per_s() * fit.bus_efficiency
    custom = engine.custom_allreduce
    mesh = device.intra_node_link_gb_s > _MESH_LINK_GB_S
    if custom is None or n > custom.max_devices or not (mesh or n == 2):
        return AllReduce(n, latency, bus)
    limit = custom.max_bytes if custom.max_bytes is not None else (custom.max_tokens or 0) * bytes_per_token
    return AllReduce(n, latency, bus, custom.latency_us * 1e-6, limit)
