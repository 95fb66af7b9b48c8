"""The search space: which (device, parallelism, formats, engine limits) could serve the model at all."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field, fields, replace

from inferplan.perf.deployment import (
    Deployment,
    EngineLimits,
    LimitValue,
    can_serve,
    engine_limits,
    parallelism_label,
)
from inferplan.perf.memory import max_concurrent_sequences, plan_memory, slot_cells
from inferplan.perf.profile import DeviceProfile
from inferplan.plan.defaults import DEFAULT_DEVICES
from inferplan.specs.catalog import (
    default_engine,
    get_device,
    get_engine,
    kv_format_catalog,
    weight_format_catalog,
    weight_format_for,
)
from inferplan.specs.engines import EngineSpec
from inferplan.specs.hardware import DeviceSpec
from inferplan.specs.model import ModelSpec
from inferplan.specs.precision import KVFormat, WeightFormat
from inferplan.specs.speculation import Speculation

__all__ = ["DEFAULT_DEVICES", "OWNED_ENERGY_PRICE"]

# U.S. average residential retail electricity price, 2024: 16.48 cents/kWh (U.S. Energy Information
# Administration, Electric Power Monthly, Table 5.3); --energy-price replaces it
OWNED_ENERGY_PRICE = 0.1648


@dataclass(frozen=True, slots=True, kw_only=True)
class Candidate:
    """One replica configuration the planner may choose: a value of every axis of the ``SearchSpace``.

    ``describe`` is derived from the fields: the device and its parallelism first, then every
    field with a ``label`` (one whose metadata says ``quiet`` is left out at its default, so
    a new axis does not change the text of plans that do not use it).
    """

    device: str
    tp: int
    pp: int = 1
    moe_split: str = "tp"  # MoE only: "tp" (slice every expert), "ep" (whole experts), "dp-attention"
    engine: str = field(default="vllm", metadata={"label": "engine", "quiet": True})
    weights: str = field(metadata={"label": "weights"})
    kv: str = field(metadata={"label": "KV"})
    max_num_seqs: int = field(metadata={"label": "max_num_seqs"})
    max_num_batched_tokens: int = field(metadata={"label": "max_num_batched_tokens"})
    spec: str = field(default="off", metadata={"label": "speculative", "quiet": True})  # Speculation.label()
    # a host KV tier of this many times the device's KV pool (0: none)
    host_kv_ratio: float = field(default=0.0, metadata={"label": "host KV tier x", "quiet": True})

    def describe(self) -> str:
        par = parallelism_label(self.tp, self.pp, self.moe_split)
        parts = [f"{self.tp * self.pp}x {self.device} ({par})"]
        for f in fields(self):
            value = getattr(self, f.name)
            if "label" in f.metadata and not (f.metadata.get("quiet") and value == f.default):
                parts.append(f"{f.metadata['label']} {value}")
        return ", ".join(parts)


@dataclass(frozen=True, slots=True, kw_only=True)
class SearchSpace:
    """The axes of the replica search. Every combination is a candidate unless a pruning rule below drops
    it; a new axis is a field here, a field of ``Candidate``, and a line in ``enumerate_candidates``."""

    devices: tuple[str, ...] = DEFAULT_DEVICES
    engines: tuple[str, ...] = ()  # serving engines the replicas may run (empty: each device's default engine)
    tp: tuple[int, ...] = (1, 2, 4, 8)
    pp: tuple[int, ...] = (1, 2, 4)  # pipeline stages span nodes: tried only when no single node fits
    max_num_seqs: tuple[int, ...] = (64, 256)
    max_num_batched_tokens: tuple[int, ...] = (2048, 8192)
    # llama.cpp: server slots (-np), each with the plan's context (-c = slots x context), n_batch at its default
    llamacpp_slots: tuple[int, ...] = (1, 2, 4, 8, 16)
    speculation: tuple[Speculation | None, ...] = (None,)  # None: no speculative decoding
    # host KV tiers for prefix blocks, as a multiple of the device's KV pool (SGLang's --hicache-ratio default is
    # 2.0, sglang/srt/server_args.py); tried only where replicas cache prefixes and the device lists host memory
    host_kv_ratio: tuple[float, ...] = (0.0,)


@dataclass(frozen=True, slots=True)
class QualityBudget:
    """Formats allowed by a maximum quality loss (percent), with unknown effects excluded unless allowed."""

    max_loss_pct: float | None = None
    allow_unknown: bool = False

    def allows(self, *formats: WeightFormat | KVFormat) -> bool:
        """Whether the formats together stay within the budget: their documented losses add up (a replica
        with int8 weights and an fp8 KV cache loses both), and an unknown one passes only if allowed."""
        if self.max_loss_pct is None:
            return True
        losses = [fmt.quality_loss_pct() for fmt in formats]
        if any(loss is None for loss in losses):
            return self.allow_unknown
        return sum(loss for loss in losses if loss is not None) <= self.max_loss_pct


def formats_for(device: str | DeviceSpec, budget: QualityBudget,
                engines: tuple[str, ...] | None = None) -> tuple[list[WeightFormat], list[KVFormat]]:
    """Weight formats with fast kernels on the device that one of ``engines`` loads (by default the
    device's default engine); KV formats the device's engines store. Weights wider than 16 bits are
    left out: upcasting a released checkpoint doubles its memory and never serves cheaper."""
    dev = get_device(device) if isinstance(device, str) else device
    names = set(engines or (default_engine(dev).name,))
    weights = [f for f in weight_format_catalog().values()
               if budget.allows(f) and f.is_fast_on(dev.kind, dev.features) and f.bits_per_weight <= 16
               and can_serve(f, dev, names)]
    kvs = [k for k in kv_format_catalog().values()
           if budget.allows(k) and (k.vllm_kv_cache_dtype if dev.is_gpu_like else k.llamacpp_cache_type)]
    return weights, kvs


def enumerate_candidates(
    model: ModelSpec,
    space: SearchSpace,
    budget: QualityBudget,
    *,
    context_tokens: int,
    longest_tokens: int | None = None,
    profile: DeviceProfile | None = None,
    energy_price: float = OWNED_ENERGY_PRICE,
    prefix_caching: bool = False,
) -> Iterator[tuple[Candidate, Deployment]]:
    """Every configuration of ``space`` that fits in memory with room for one sequence of ``context_tokens``.

    ``profile`` applies to the device it was measured or calibrated for (``local``: the one it describes);
    ``energy_price`` (USD/kWh) costs a device that has no rental price. ``prefix_caching``: the replicas
    cache prompt blocks, as the launch files' vLLM, SGLang and TensorRT-LLM servers do by default (set
    where the workload shares prefixes; elsewhere it changes no result and only slows simulation).
    """
    for name in space.devices:
        dev, prof = _device_and_profile(name, profile, energy_price)
        default = default_engine(dev).name  # left unnamed on the deployment, as a user who names none
        specs = {e: get_engine(e) for e in space.engines or (default,)}
        engines = tuple(e for e, spec in specs.items() if spec.runs(dev.kind))
        weights, kvs = formats_for(dev, budget, engines)
        if model.checkpoint_format:  # a quantized checkpoint is served as what it is, fast kernels or not
            own = weight_format_for(model)
            weights = [own] if can_serve(own, dev, set(engines)) else []
        tps = [t for t in space.tp if tp_allowed(model, dev, t)]
        for pp in space.pp:
            found = False
            for tp in tps if pp == 1 else tps[-1:]:  # several nodes: each stage as wide as a node allows
                for split, engine, w, kv, seqs, tokens, spec in _axes(model, tp, engines, weights, kvs, space):
                    if (engine not in w.engines or (spec is not None and engine not in spec.method.engines)
                            or not budget.allows(w, kv)):
                        continue
                    limits = _limits(specs[engine], seqs, tokens, longest_tokens or context_tokens,
                                     prefix_caching and engine != "llamacpp")
                    dep = Deployment(model=model, device=dev, weights=w, kv=kv, tp=tp, pp=pp, limits=limits,
                                     profile=prof, ep=split != "tp", dp_attention=split == "dp-attention",
                                     engine=None if engine == default else specs[engine], speculation=spec)
                    if not fits(dep, context_tokens):
                        continue
                    found = True
                    cand = Candidate(device=name, tp=tp, pp=pp, moe_split=split, engine=engine, weights=w.name,
                                     kv=kv.name, max_num_seqs=seqs, max_num_batched_tokens=tokens,
                                     spec=spec.label() if spec else "off")
                    yield from with_host_tiers(cand, dep, space.host_kv_ratio, context_tokens)
            if found:  # a pipeline over more nodes only when none of this depth fits
                break


HICACHE_RATIO = 2.0  # SGLang's default host pool: twice the device's (sglang/srt/server_args.py hicache_ratio)


def host_tier_ratios(sessions: bool) -> tuple[float, ...]:
    """The tiers a plan tries: none, and SGLang's default ratio where the workload is sessions whose contexts
    come back (a tier pays only when evicted prefixes are asked for again)."""
    return (0.0, HICACHE_RATIO) if sessions else (0.0,)


def with_host_tiers(cand: Candidate, dep: Deployment, ratios: tuple[float, ...],
                    context_tokens: int) -> Iterator[tuple[Candidate, Deployment]]:
    """The candidate without a host tier (where 0 is among ``ratios``) and with each tier of ``ratio`` x its
    device KV pool, capped by the node's host memory: only where the replica caches prefixes (a tier keeps
    evicted prefix blocks) and the device lists a host link and host memory to price and hold it."""
    dev, lim = dep.device, dep.limits
    for ratio in ratios:
        if not ratio:
            yield cand, dep
            continue
        if not lim.enable_prefix_caching or dev.host_link_gb_s is None or dev.host_memory_gib is None:
            continue
        kv_gib = plan_memory(dep).kv_budget_bytes * dep.num_devices / 2**30
        gib = round(min(ratio * kv_gib, dev.host_memory_gib * dep.num_devices), 1)
        tiered = replace(dep, limits=replace(lim, cpu_kv_cache_gib=gib))
        if gib > 0 and fits(tiered, context_tokens):
            yield replace(cand, host_kv_ratio=ratio), tiered


def _axes(model: ModelSpec, tp: int, engines: tuple[str, ...], weights: list[WeightFormat], kvs: list[KVFormat],
          space: SearchSpace) -> Iterator[tuple[str, str, WeightFormat, KVFormat, int, int, Speculation | None]]:
    """(MoE split, engine, weights, KV, sequences, batched tokens, speculation): llama.cpp searches its slots
    instead of the limits."""
    for engine in engines:
        seqs, tokens = ((space.llamacpp_slots, (get_engine(engine).defaults.max_num_batched_tokens,))
                        if engine == "llamacpp" else (space.max_num_seqs, space.max_num_batched_tokens))
        for split, w, kv, s, t, spec in itertools.product(moe_splits(model, tp), weights, kvs, seqs, tokens,
                                                          space.speculation):
            yield split, engine, w, kv, s, t, spec


def _limits(engine: EngineSpec, seqs: int, tokens: int, longest_tokens: int,
            prefix_caching: bool = False) -> EngineLimits:
    """The engine's own defaults with the searched values, and chunked prefill on where the engine has it off
    by default (TensorRT-LLM: the launch files then pass its flag). llama.cpp's slots each hold the longest
    request, rounded to the 256 cells it allocates, so the launched -c is exactly what was simulated."""
    given: dict[str, LimitValue] = {"max_num_seqs": seqs, "max_num_batched_tokens": tokens,
                                    "enable_chunked_prefill": True, "enable_prefix_caching": prefix_caching}
    if engine.name == "llamacpp":
        given["slot_context"] = slot_cells(longest_tokens)
    return engine_limits(engine, given)


def _device_and_profile(name: str, profile: DeviceProfile | None,
                        energy_price: float) -> tuple[DeviceSpec, DeviceProfile | None]:
    """The device to plan on (a profile's own device where it names one) and the profile that applies to it."""
    dev = (profile.resolve_device(name) if profile else None) or get_device(name)
    return owned_priced(dev, energy_price), profile if profile and profile.device in (name, dev.name) else None


def owned_priced(dev: DeviceSpec, energy_price: float) -> DeviceSpec:
    """A device with no rental price (a laptop, a Pi, a workstation one owns) is costed by the energy it draws
    at full power, so plans over owned devices rank by watts; a device file with a price (an amortised one)
    overrides it."""
    if dev.price_per_hour_usd is not None:
        return dev
    return dev.model_copy(update={
        "price_per_hour_usd": dev.peak_power_w / 1000 * energy_price, "price_date": "owned",
        "price_source": f"owned: energy at {dev.peak_power_w:g} W x ${energy_price:g}/kWh (no rental price)"})


def tp_allowed(model: ModelSpec, dev: DeviceSpec, tp: int) -> bool:
    """Pruning rule: tensor parallelism within one node, over a number of devices that splits the heads."""
    return tp <= dev.max_devices_per_node and model.num_attention_heads % tp == 0


def fits(dep: Deployment, context_tokens: int) -> bool:
    """Pruning rule: the weights fit with room for at least one sequence of ``context_tokens``."""
    mem = plan_memory(dep)
    return mem.fits and max_concurrent_sequences(dep, mem, context_tokens) >= 1


def moe_splits(model: ModelSpec, tp: int) -> tuple[str, ...]:
    """How a replica of ``tp`` devices may split a MoE model's experts: sliced (TP), whole (EP), or EP
    with data-parallel attention. Dense models, and expert counts ``tp`` does not divide, only slice."""
    if model.moe is None or tp < 2 or model.moe.num_experts % tp:
        return ("tp",)
    return ("tp", "ep", "dp-attention")
