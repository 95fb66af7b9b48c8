"""The search space: which (device, parallelism, formats, engine limits) could serve the model at all."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from inferplan.errors import InputError
from inferplan.perf.deployment import Deployment, EngineLimits, parallelism_label
from inferplan.perf.memory import max_concurrent_sequences, plan_memory
from inferplan.perf.profile import DeviceProfile
from inferplan.plan.defaults import DEFAULT_DEVICES
from inferplan.specs.catalog import get_device, kv_format_catalog, weight_format_catalog
from inferplan.specs.hardware import DeviceSpec
from inferplan.specs.model import ModelSpec
from inferplan.specs.precision import KVFormat, WeightFormat

__all__ = ["DEFAULT_DEVICES"]


@dataclass(frozen=True, slots=True)
class Candidate:
    """One replica configuration the planner may choose."""

    device: str
    tp: int
    weights: str
    kv: str
    max_num_seqs: int
    max_num_batched_tokens: int
    pp: int = 1
    moe_split: str = "tp"  # MoE only: "tp" (slice every expert), "ep" (whole experts), "dp-attention"

    def describe(self) -> str:
        par = parallelism_label(self.tp, self.pp, self.moe_split)
        return (f"{self.tp * self.pp}x {self.device} ({par}), weights {self.weights}, KV {self.kv}, "
                f"max_num_seqs {self.max_num_seqs}, max_num_batched_tokens {self.max_num_batched_tokens}")


@dataclass(frozen=True, slots=True)
class QualityBudget:
    """Formats allowed by a maximum quality loss (percent), with unknown effects excluded unless allowed."""

    max_loss_pct: float | None = None
    allow_unknown: bool = False

    def allows(self, fmt: WeightFormat | KVFormat) -> bool:
        if self.max_loss_pct is None:
            return True
        loss = fmt.quality_loss_pct()
        if loss is None:
            return self.allow_unknown
        return loss <= self.max_loss_pct


def formats_for(device: str | DeviceSpec, budget: QualityBudget) -> tuple[list[WeightFormat], list[KVFormat]]:
    """Weight formats with fast kernels on the device and a serving engine; KV formats vLLM supports."""
    dev = get_device(device) if isinstance(device, str) else device
    weights = [f for f in weight_format_catalog().values()
               if budget.allows(f) and f.is_fast_on(dev.kind, dev.features) and
               ({"vllm", "sglang"} & set(f.engines) if dev.is_gpu_like else "llamacpp" in f.engines)]
    kvs = [k for k in kv_format_catalog().values()
           if budget.allows(k) and (k.vllm_kv_cache_dtype if dev.is_gpu_like else k.llamacpp_cache_type)]
    return weights, kvs


def enumerate_candidates(
    model: ModelSpec,
    devices: Sequence[str],
    budget: QualityBudget,
    *,
    context_tokens: int,
    max_num_seqs_options: Sequence[int] = (64, 256),
    batched_tokens_options: Sequence[int] = (2048, 8192),
    profile: DeviceProfile | None = None,
) -> Iterator[tuple[Candidate, Deployment]]:
    """Every configuration that fits in memory with room for one sequence of ``context_tokens``.

    ``profile`` applies to the device it was measured or calibrated for (``local``: the one it describes).
    """
    for name in devices:
        dev = (profile.resolve_device(name) if profile else None) or get_device(name)
        prof = profile if profile and profile.device in (name, dev.name) else None
        if dev.price_per_hour_usd is None:
            raise InputError(f"device '{name}' has no price; give it one in a device file to plan with it")
        weights, kvs = formats_for(dev, budget)
        if model.checkpoint_format:  # a quantized checkpoint is served as what it is
            weights = [w for w in weights if w.name == model.checkpoint_format]
        tps = [t for t in (1, 2, 4, 8) if t <= dev.max_devices_per_node and model.num_attention_heads % t == 0]
        found = False
        for pp in (1, 2, 4):  # pipeline stages span nodes: only when no single node of this device fits
            if found:
                break
            for tp in tps if pp == 1 else tps[-1:]:
                for split in moe_splits(model, tp):
                    for w in weights:
                        for kv in kvs:
                            for seqs in max_num_seqs_options:
                                for tokens in batched_tokens_options:
                                    limits = EngineLimits(max_num_seqs=seqs, max_num_batched_tokens=tokens)
                                    dep = Deployment(model=model, device=dev, weights=w, kv=kv, tp=tp, pp=pp,
                                                     limits=limits, profile=prof, ep=split != "tp",
                                                     dp_attention=split == "dp-attention")
                                    mem = plan_memory(dep)
                                    if not mem.fits or max_concurrent_sequences(dep, mem, context_tokens) < 1:
                                        continue
                                    found = True
                                    yield Candidate(name, tp, w.name, kv.name, seqs, tokens, pp, split), dep


def moe_splits(model: ModelSpec, tp: int) -> tuple[str, ...]:
    """How a replica of ``tp`` devices may split a MoE model's experts: sliced (TP), whole (EP), or EP
    with data-parallel attention. Dense models, and expert counts ``tp`` does not divide, only slice."""
    if model.moe is None or tp < 2 or model.moe.num_experts % tp:
        return ("tp",)
    return ("tp", "ep", "dp-attention")
