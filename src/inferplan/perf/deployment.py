"""Deployment: one replica's model, device, parallelism, formats and engine limits.

It is the unit every later layer prices: memory decides whether it fits and
how many KV blocks it has; StepCost decides how long its steps take.
"""

from __future__ import annotations

from dataclasses import dataclass

from inferplan.errors import InputError
from inferplan.perf.profile import DeviceProfile
from inferplan.specs.hardware import DeviceSpec
from inferplan.specs.model import ModelSpec
from inferplan.specs.precision import KVFormat, WeightFormat


@dataclass(frozen=True, slots=True, kw_only=True)
class EngineLimits:
    """The engine knobs that shape memory and batching, named as vLLM names them."""

    max_num_seqs: int = 256
    max_num_batched_tokens: int = 8192
    block_size: int = 16
    gpu_memory_utilization: float = 0.9
    enable_chunked_prefill: bool = True
    enable_prefix_caching: bool = False
    long_prefill_token_threshold: int = 0  # 0 = off

    def __post_init__(self) -> None:
        if self.max_num_seqs < 1 or self.max_num_batched_tokens < 1 or self.block_size < 1:
            raise InputError("engine limits must be positive (max_num_seqs, max_num_batched_tokens, block_size)")
        if not 0 < self.gpu_memory_utilization <= 1:
            raise InputError(f"gpu_memory_utilization must be in (0, 1], got {self.gpu_memory_utilization}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Deployment:
    """A replica: ``tp * pp`` devices of one type running one model."""

    model: ModelSpec
    device: DeviceSpec
    weights: WeightFormat
    kv: KVFormat
    tp: int = 1
    pp: int = 1
    limits: EngineLimits = EngineLimits()
    profile: DeviceProfile | None = None

    def __post_init__(self) -> None:
        m = self.model
        if self.tp < 1 or self.pp < 1:
            raise InputError(f"--tp and --pp must be at least 1 (got tp={self.tp}, pp={self.pp})")
        if m.num_attention_heads % self.tp:
            raise InputError(
                f"--tp {self.tp} does not divide {m.name}'s {m.num_attention_heads} attention heads; "
                f"use one of {divisors(m.num_attention_heads, limit=self.device.max_devices_per_node * 8)}"
            )
        if self.pp > m.num_layers:
            raise InputError(f"--pp {self.pp} exceeds {m.name}'s {m.num_layers} layers")
        if self.profile is None:
            object.__setattr__(self, "profile", DeviceProfile.default_for(self.device))

    @property
    def num_devices(self) -> int:
        return self.tp * self.pp

    @property
    def device_profile(self) -> DeviceProfile:
        assert self.profile is not None
        return self.profile

    @property
    def kv_shards(self) -> int:
        """How many ways one layer's KV is split across TP ranks (heads replicate past num_kv_heads; MLA latent never splits)."""
        if self.model.mla is not None:
            return 1
        return min(self.tp, self.model.num_kv_heads)

    @property
    def price_per_hour(self) -> float | None:
        price = self.device.price_per_hour_usd
        return None if price is None else price * self.num_devices

    def describe(self) -> str:
        par = f"TP{self.tp}" + (f"xPP{self.pp}" if self.pp > 1 else "")
        return f"{self.model.name} on {self.num_devices}x {self.device.name} ({par}, weights {self.weights.name}, KV {self.kv.name})"


def divisors(n: int, limit: int) -> list[int]:
    return [d for d in range(1, min(n, limit) + 1) if n % d == 0]
