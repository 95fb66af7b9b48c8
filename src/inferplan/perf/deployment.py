"""Deployment: one replica's model, device, parallelism, formats and engine limits.

It is the unit every later layer prices: memory decides whether it fits and
how many KV blocks it has; StepCost decides how long its steps take.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, is_dataclass, replace

from inferplan.errors import InputError
from inferplan.perf.profile import DeviceProfile
from inferplan.specs.catalog import engine_catalog, engine_for
from inferplan.specs.engines import EngineSpec
from inferplan.specs.hardware import DeviceSpec
from inferplan.specs.kv_eviction import KVBudget
from inferplan.specs.model import ModelSpec
from inferplan.specs.precision import KVFormat, WeightFormat
from inferplan.specs.speculation import Speculation


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
    flash_attention: bool = True  # off: engines without fused attention (llama.cpp -fa off) write the score matrix
    # llama.cpp: context cells per slot (-c / -np): the KV cache holds max_num_seqs of them, as allocated, and
    # a request longer than one slot is refused; 0: the KV cache is whatever memory allows, shared
    slot_context: int = 0
    # a host-memory tier for prefix-cached KV blocks the device evicts, GiB per replica (0: none); vLLM's CPU
    # offloading connector, LMCache, SGLang's HiCache (--hicache-size)
    cpu_kv_cache_gib: float = 0.0
    # preemption by swapping a request's KV to host memory (GiB per replica) instead of recomputing it later:
    # vLLM V0's --preemption-mode swap --swap-space, FastSwitch (P207); 0: recompute, as every engine launched does
    swap_space_gib: float = 0.0
    # schedule by request priority, lower first, preempting the least important (vLLM --scheduling-policy
    # priority, SGLang --enable-priority-scheduling): what a fleet serving online beside batch work runs
    priority_scheduling: bool = False

    def __post_init__(self) -> None:
        if self.cpu_kv_cache_gib < 0:
            raise InputError(f"--cpu-kv-cache must be 0 or more GiB (got {self.cpu_kv_cache_gib:g})")
        if self.swap_space_gib < 0:
            raise InputError(f"--swap-space must be 0 or more GiB (got {self.swap_space_gib:g})")
        if self.max_num_seqs < 1 or self.max_num_batched_tokens < 1 or self.block_size < 1:
            raise InputError("engine limits must be positive (max_num_seqs, max_num_batched_tokens, block_size)")
        if not 0 < self.gpu_memory_utilization <= 1:
            raise InputError(f"gpu_memory_utilization must be in (0, 1], got {self.gpu_memory_utilization}")


LimitValue = int | float | bool | None


def engine_limits(engine: EngineSpec, given: Mapping[str, LimitValue] | None = None) -> EngineLimits:
    """The engine's own defaults for the limits, with every value the user gave (not None) in their place."""
    d = engine.defaults
    values: dict[str, LimitValue] = {
        "max_num_seqs": d.max_num_seqs, "max_num_batched_tokens": d.max_num_batched_tokens,
        "block_size": d.block_size, "gpu_memory_utilization": d.memory_fraction,
        "enable_chunked_prefill": d.enable_chunked_prefill, "flash_attention": d.flash_attention,
    }
    values |= {k: v for k, v in (given or {}).items() if v is not None}
    return EngineLimits(**values)  # type: ignore[arg-type]


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
    # MoE only. ``ep``: the tp devices split the routed experts between them (whole experts per
    # device) instead of slicing every expert (vLLM --enable-expert-parallel, SGLang --ep-size).
    # ``dp_attention``: attention runs data-parallel on the tp devices, each with its own
    # sequences and full KV heads, experts expert-parallel (SGLang --enable-dp-attention;
    # vLLM --data-parallel-size with --enable-expert-parallel). Engine limits are per DP rank.
    ep: bool = False
    dp_attention: bool = False
    # the serving engine: its scheduler, memory rule and host overhead (None: ``engine_for`` the device)
    engine: EngineSpec | None = None
    speculation: Speculation | None = None  # speculative decoding (perf/speculation.py prices it)
    kv_budget: KVBudget | None = None  # KV eviction: at most this many tokens per sequence in every layer
    # resolved from the two above: a ``replace`` that changes the weights or the engine resolves them again,
    # so a default engine follows the format and a default profile follows the engine
    serving_engine: EngineSpec = field(init=False, compare=False, repr=False)
    device_profile: DeviceProfile = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        m = self.model
        engine = self.engine or engine_for(self.device, self.weights)
        object.__setattr__(self, "serving_engine", engine)
        check_engine_runs(self.serving_engine, self.device, self.weights)
        if m.checkpoint_format and self.weights.name != m.checkpoint_format:
            raise InputError(f"{m.name}'s config.json declares a {m.checkpoint_format} checkpoint "
                             f"(quantization_config), so it cannot be served as {self.weights.name}; drop --weights "
                             f"or pass --weights {m.checkpoint_format}")
        if self.speculation is not None:
            self.speculation.check_target(m)
            check_engine_speculates(engine, self.speculation)
        check_host_tier(self)
        if self.kv_budget is not None and m.num_sliding_layers:
            raise InputError(f"--kv-budget on {m.name}, whose sliding-window layers already keep a window, is not "
                             "modelled; drop --kv-budget or choose a model whose layers all attend to everything")
        if self.tp < 1 or self.pp < 1:
            raise InputError(f"--tp and --pp must be at least 1 (got tp={self.tp}, pp={self.pp})")
        if self.ep or self.dp_attention:
            if m.moe is None:
                raise InputError(f"--ep/--dp-attention split experts, and {m.name} has none; drop the flag")
            if self.tp < 2:
                raise InputError("--ep/--dp-attention spread experts over the --tp devices; give --tp 2 or more")
            if m.moe.num_experts % self.tp:
                raise InputError(f"--tp {self.tp} does not divide {m.name}'s {m.moe.num_experts} experts for --ep; "
                                 "use one of "
                                 f"{divisors(m.moe.num_experts, limit=self.device.max_devices_per_node * 8)}")
            object.__setattr__(self, "ep", True)  # data-parallel attention always pairs with expert-parallel MoE
        if m.num_attention_heads % self.attention_tp:
            raise InputError(
                f"--tp {self.tp} does not divide {m.name}'s {m.num_attention_heads} attention heads; "
                f"use one of {divisors(m.num_attention_heads, limit=self.device.max_devices_per_node * 8)}"
            )
        if self.pp > m.num_layers:
            raise InputError(f"--pp {self.pp} exceeds {m.name}'s {m.num_layers} layers")
        object.__setattr__(self, "device_profile", self.profile or DeviceProfile.default_for(self.device, engine))

    @property
    def num_devices(self) -> int:
        return self.tp * self.pp

    @property
    def attention_tp(self) -> int:
        """Devices one sequence's attention is split over: 1 with data-parallel attention."""
        return 1 if self.dp_attention else self.tp

    @property
    def dp(self) -> int:
        """Data-parallel attention ranks: each runs its own sequences with its own KV cache."""
        return self.tp if self.dp_attention else 1

    @property
    def group_limits(self) -> EngineLimits:
        """The replica's limits as one scheduler sees them: per-rank limits times the DP ranks."""
        if self.dp == 1:
            return self.limits
        lim = self.limits
        return replace(lim, max_num_seqs=lim.max_num_seqs * self.dp,
                       max_num_batched_tokens=lim.max_num_batched_tokens * self.dp)

    @property
    def attention_window(self) -> int | None:
        """The window the model's sliding-window layers attend to under this engine; None when every layer
        attends to the whole context (no sliding layers, or an engine that keeps it, as TensorRT-LLM does
        unless per-layer windows are given)."""
        m = self.model
        if self.kv_budget is not None:  # every layer keeps the budget (and attends to what it keeps)
            return min(self.kv_budget.tokens, m.max_position_embeddings)
        if not (m.num_sliding_layers and m.sliding_window) or self.serving_engine.sliding_window_kv == "full":
            return None
        return m.sliding_window

    @property
    def attention_layers(self) -> tuple[int, int]:
        """(full-attention, sliding-window) layers as this engine runs them."""
        m = self.model
        if self.kv_budget is not None:
            return 0, m.num_layers
        return (m.num_full_layers, m.num_sliding_layers) if self.attention_window else (m.num_layers, 0)

    @property
    def kv_shards(self) -> int:
        """How many ways one layer's KV is split across TP ranks.

        Heads replicate past num_kv_heads; an MLA latent never splits."""
        if self.model.mla is not None:
            return 1
        return min(self.attention_tp, self.model.num_kv_heads)

    @property
    def price_per_hour(self) -> float | None:
        price = self.device.price_per_hour_usd
        return None if price is None else price * self.num_devices

    def fingerprint(self) -> dict[str, object]:
        """Every field as JSON-able data, for cache keys: a key built from it changes whenever any part of
        the replica does (a field added later included), so a changed replica never reuses a stale result.
        A profile's raw measurements are left out: the fitted numbers beside them are what prices steps."""
        out: dict[str, object] = {}
        for f in fields(self):
            if f.name in _AS_GIVEN:  # keyed as resolved: device_profile, serving_engine
                continue
            value, key = getattr(self, f.name), _RESOLVED.get(f.name, f.name)
            if isinstance(value, Speculation):
                out[key] = value.key()
            elif isinstance(value, DeviceProfile):
                out[key] = value.model_dump(mode="json", exclude={"measurements"})
            elif isinstance(value, DeviceSpec) and value.power_cap_w is None:  # keys made before caps existed hold
                out[key] = value.model_dump(mode="json", exclude={"power_cap_w"})
            elif hasattr(value, "model_dump"):
                out[key] = value.model_dump(mode="json")
            elif is_dataclass(value) and not isinstance(value, type):  # ModelSpec, EngineLimits
                out[key] = asdict(value)
            else:
                out[key] = value
        return out

    def describe(self) -> str:
        engine = f", engine {self.engine.name}" if self.engine else ""  # named: a default engine is not said
        spec = f", speculative {self.speculation.label()}" if self.speculation else ""
        budget = f", KV budget {self.kv_budget.label()}" if self.kv_budget else ""
        cap = f", power cap {self.device.power_cap_w:g} W" if self.device.power_cap_w else ""
        return (f"{self.model.name} on {self.num_devices}x {self.device.name} ({self.parallelism}, "
                f"weights {self.weights.name}, KV {self.kv.name}{engine}{spec}{budget}{cap})")

    @property
    def moe_split(self) -> str:
        """How experts are split over the tp devices: "tp" (sliced), "ep" (whole) or "dp-attention"."""
        return "dp-attention" if self.dp_attention else "ep" if self.ep else "tp"

    @property
    def parallelism(self) -> str:
        """TP4, TP2xPP2, TP4+EP4 or DP4-attention+EP4."""
        return parallelism_label(self.tp, self.pp, self.moe_split)


def parallelism_label(tp: int, pp: int, moe_split: str = "tp") -> str:
    """How a replica's devices are split, as the CLI and reports print it."""
    if moe_split == "dp-attention":
        par = f"DP{tp}-attention+EP{tp}"
    else:
        par = f"TP{tp}" + (f"+EP{tp}" if moe_split == "ep" else "")
    return par + (f"xPP{pp}" if pp > 1 else "")


_AS_GIVEN = ("profile", "engine")
_RESOLVED = {"device_profile": "profile", "serving_engine": "engine"}


def check_engine_runs(engine: EngineSpec, device: DeviceSpec, weights: WeightFormat) -> None:
    """An engine serves on the device's kind, runs the weight format, and the device has what the format needs."""
    if not engine.runs(device.kind):
        raise InputError(f"engine {engine.name} does not serve on {device.kind} devices like {device.name}; "
                         f"use one of: {', '.join(engine_names_for(device))}")
    if not weights.engines:
        raise InputError(f"no serving engine in the catalog loads {weights.name} weights (see `inferplan formats`)")
    if engine.name not in weights.engines:
        raise InputError(f"engine {engine.name} cannot load {weights.name} weights; engines that can: "
                         f"{', '.join(weights.engines)} (or choose another --weights)")
    missing = [f for f in weights.requires if f not in device.features]
    if missing:
        raise InputError(f"{weights.name} needs {', '.join(missing)} kernels, which {device.name} does not have; "
                         "choose another --weights or a device that has them")


def check_host_tier(dep: Deployment) -> None:
    """KV in host memory (a CPU tier for prefix blocks, swap space for preempted requests) needs a host link to
    price its copies at and host memory to hold it; a tier needs prefix caching too."""
    lim, dev = dep.limits, dep.device
    gib = lim.cpu_kv_cache_gib + lim.swap_space_gib
    if not gib:
        return
    if lim.cpu_kv_cache_gib and not lim.enable_prefix_caching:
        raise InputError("--cpu-kv-cache keeps prefix-cached blocks the device evicts; add --prefix-caching")
    flags = " + ".join(f for f, v in (("--cpu-kv-cache", lim.cpu_kv_cache_gib), ("--swap-space", lim.swap_space_gib))
                       if v)
    if dev.host_link_gb_s is None or dev.host_memory_gib is None:
        raise InputError(f"{dev.name} has no host link bandwidth or host memory in the device catalog, so {flags} "
                         "cannot be priced; give a device file with host_link_gb_s, host_memory_gib and host_source")
    host = dev.host_memory_gib * dep.num_devices
    if gib > host:
        raise InputError(f"{flags} {gib:g} GiB is more than the {host:g} GiB of host memory "
                         f"{dep.num_devices}x {dev.name} have ({dev.host_source}); give at most that")


def check_engine_speculates(engine: EngineSpec, spec: Speculation) -> None:
    """The engine runs the speculative method (``catalog/speculation.yaml`` lists the engines of each)."""
    if engine.name not in spec.method.engines:
        runs = ", ".join(spec.method.engines) or "none"
        raise InputError(f"engine {engine.name} does not run {spec.method.name} speculative decoding "
                         f"(engines that do: {runs}); choose another --spec or --engine")


def can_serve(weights: WeightFormat, device: DeviceSpec, engines: set[str] | None = None) -> bool:
    """Whether one of ``engines`` (default: every engine that serves on the device) loads the format and
    the device has the features it needs: the formats worth offering for a device."""
    names = engines if engines is not None else set(engine_names_for(device))
    return bool(names & set(weights.engines)) and not set(weights.requires) - set(device.features)


def engine_names_for(device: DeviceSpec) -> list[str]:
    return [e.name for e in engine_catalog().values() if e.runs(device.kind)]


def divisors(n: int, limit: int) -> list[int]:
    return [d for d in range(1, min(n, limit) + 1) if n % d == 0]
