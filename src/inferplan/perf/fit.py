"""`fit`: will this model run on this device, with which formats, and how fast?"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace

from inferplan.errors import InputError
from inferplan.perf.deployment import Deployment, can_serve, divisors
from inferplan.perf.memory import (
    MemoryPlan,
    blocks_for_context,
    max_concurrent_sequences,
    max_context,
    plan_memory,
)
from inferplan.perf.ranges import latency_spread, spread_for
from inferplan.perf.speculation import TokenPricing
from inferplan.perf.step_cost import StepCost
from inferplan.perf.wired_limit import MACOS_KEEPS_GIB, sysctl_value_mb, wired
from inferplan.specs.catalog import kv_eviction_catalog, weight_format_catalog
from inferplan.specs.kv_eviction import KVBudget


@dataclass(frozen=True, slots=True)
class FitResult:
    """Everything `inferplan fit` reports, flat so it serialises to JSON directly."""

    model: str
    device: str
    weights_format: str
    kv_format: str
    tp: int
    pp: int
    context: int
    prompt_tokens: int
    params_total: int
    params_active: int
    weights_bytes: float
    activation_bytes: float
    overhead_bytes: float
    reserve_bytes: float
    kv_budget_bytes: float
    capacity_bytes: float
    kv_bytes_per_token: float
    num_kv_blocks: int
    fits: bool
    fits_context: bool
    max_context: int
    max_concurrent_sequences: int
    decode_tokens_per_s_batch1: float
    decode_batch_max: int
    decode_tokens_per_s_batch_max: float
    prefill_tokens_per_s: float
    ttft_s: float
    quality_loss_pct: float | None
    quality_source: str | None
    parallelism: str = ""  # TP4, TP4+EP4, DP4-attention+EP4, TP2xPP2
    kv_capacity_tokens: int = 0
    # what one sequence of ``context`` tokens leaves of the device's memory: on a laptop, a Pi or a Mac, the
    # room for the OS and other apps (weights, workspace, engine overhead and that sequence's KV taken)
    headroom_bytes: float = 0.0
    energy_per_token_j: float = 0.0  # one decoded token at batch 1, at the context (idle + dynamic power)
    unified_memory: bool = False  # the device's memory is the system's (SoCs and CPUs)
    wired_limit_gib: float | None = None  # a Mac's GPU wired-memory limit, the usable capacity (None: not a Mac)
    speed_range_pct: float | None = None  # +- band of the speed figures (1 s.d.) from a calibrated profile
    # 10-90% ranges the device kind's calibration residuals imply, by field name (perf/ranges.py)
    ranges: dict[str, tuple[float, float]] = field(default_factory=dict)
    # KV eviction under a budget: its label, and its published quality effect (None: unknown) with the source
    kv_budget: str | None = None
    kv_budget_quality: str | None = None
    suggestions: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, object]:
        d = asdict(self)
        d["suggestions"] = list(self.suggestions)
        return d


def residual_ranges(kind: str, *, ttft_s: float, batch1: float, batch_max: float,
                    engine: str = "") -> dict[str, tuple[float, float]]:
    """TTFT from the TTFT residuals, batch-1 decode from the ITL ones (tokens/s is 1 / ITL, so the truth is
    ``predicted x (1 + e)``), batch-max decode from the offline throughput ones. Under llama.cpp, from its own
    llama-bench residuals: prompt speed (pp; a time is n / speed, so its truth is ``predicted x (1 + e)``) and
    generation speed (tg)."""
    if engine == "llamacpp":
        out: dict[str, tuple[float, float]] = {}
        if (found := latency_spread(kind, engine, "ttft")) is not None:  # prompt-speed errors, as times
            out["ttft_s"] = found[0].truth_range(ttft_s)
        if (s := spread_for(kind, "tg")) is not None:
            out["decode_tokens_per_s_batch1"] = s.truth_range(batch1)
        return out
    out = {}
    if (s := spread_for(kind, "ttft")) is not None:
        out["ttft_s"] = s.truth_range(ttft_s)
    if (s := spread_for(kind, "itl")) is not None:
        out["decode_tokens_per_s_batch1"] = (batch1 * (1 + s.error_at(0.1)), batch1 * (1 + s.error_at(0.9)))
    if (s := spread_for(kind, "throughput")) is not None:
        out["decode_tokens_per_s_batch_max"] = s.truth_range(batch_max)
    return out


def speed_range_pct(dep: Deployment) -> float | None:
    """The calibrated spread of step times, as +-percent, when the profile has one."""
    sd = dep.device_profile.uncertainty.get("step_time_log_sd")
    return None if sd is None else 100 * (math.exp(sd) - 1)


def fit(dep: Deployment, *, context: int, prompt_tokens: int | None = None, batch: int | None = None) -> FitResult:
    """Memory verdict and speed of one deployment at a context length."""
    m = dep.model
    if context < 1:
        raise InputError(f"--context must be at least 1, got {context}")
    if context > m.max_position_embeddings:
        raise InputError(
            f"--context {context} exceeds {m.name}'s maximum of {m.max_position_embeddings} tokens "
            f"(max_position_embeddings); use --context {m.max_position_embeddings} or less"
        )
    prompt = min(prompt_tokens or min(context, 1024), context)
    mem = plan_memory(dep)
    cost = StepCost(dep)
    conc = max_concurrent_sequences(dep, mem, context) if mem.fits else 0
    b_max = min(conc, dep.group_limits.max_num_seqs) if batch is None else batch
    ttft = cost.prefill_seconds(prompt, chunk=dep.limits.max_num_batched_tokens)
    tokens = TokenPricing(dep, cost)  # with speculation: a verification step over the tokens it gains
    b_max = tokens.batch_limit(dep, b_max)
    t1, joules1 = tokens.seconds(1, context), tokens.joules(1, context)
    tb = tokens.seconds(max(b_max, 1), context)
    fits_ctx = mem.fits and conc >= 1
    result = FitResult(
        model=m.name,
        device=dep.device.name,
        weights_format=dep.weights.name,
        kv_format=dep.kv.name,
        tp=dep.tp,
        pp=dep.pp,
        parallelism=dep.parallelism,
        context=context,
        prompt_tokens=prompt,
        params_total=m.params_total,
        params_active=m.params_active,
        weights_bytes=mem.weights_bytes * dep.num_devices,
        activation_bytes=mem.activation_bytes,
        overhead_bytes=mem.overhead_bytes,
        reserve_bytes=mem.reserve_bytes,
        kv_budget_bytes=mem.kv_budget_bytes,
        capacity_bytes=mem.capacity_bytes,
        kv_bytes_per_token=m.kv_bytes_per_token(dep.kv.bytes_per_value),
        kv_capacity_tokens=mem.kv_capacity_tokens,
        headroom_bytes=headroom_bytes(dep, mem, context),
        energy_per_token_j=joules1,
        unified_memory=not dep.device.is_gpu_like,
        wired_limit_gib=mem.capacity_bytes / 2**30 if dep.device.kind == "apple-soc" else None,
        num_kv_blocks=mem.num_kv_blocks,
        fits=mem.fits,
        fits_context=fits_ctx,
        max_context=max_context(dep, mem),
        max_concurrent_sequences=conc,
        decode_tokens_per_s_batch1=1.0 / t1,
        decode_batch_max=max(b_max, 1),
        decode_tokens_per_s_batch_max=max(b_max, 1) / tb,
        prefill_tokens_per_s=prompt / ttft,
        ttft_s=ttft,
        quality_loss_pct=dep.weights.quality_loss_pct(),
        quality_source=dep.weights.quality.source if dep.weights.quality else None,
        speed_range_pct=speed_range_pct(dep),
        kv_budget=dep.kv_budget.label() if dep.kv_budget else None,
        kv_budget_quality=_budget_quality(dep),
        ranges=residual_ranges(dep.device.kind, ttft_s=ttft, batch1=1.0 / t1, batch_max=max(b_max, 1) / tb,
                               engine=dep.serving_engine.name),
    )
    if not fits_ctx:
        result = replace(result, suggestions=tuple(suggest(dep, mem, context)))
    return result


def _budget_quality(dep: Deployment) -> str | None:
    """The eviction budget's published quality effect for this model at this budget, as one line."""
    if dep.kv_budget is None:
        return None
    q = dep.kv_budget.method_spec().quality_for(dep.model.name, dep.kv_budget.tokens)
    return None if q is None else f"{q.loss_pct:g}% worse on {q.metric} - {q.source}"


def headroom_bytes(dep: Deployment, mem: MemoryPlan, context: int) -> float:
    """Device memory left when one sequence of ``context`` tokens is served (negative: it does not fit)."""
    kv = blocks_for_context(dep, context, mem.layout) * mem.page_bytes
    used = mem.weights_bytes + mem.activation_bytes + mem.overhead_bytes + kv
    return dep.device.memory_bytes - used


def suggest(dep: Deployment, mem: MemoryPlan, context: int) -> list[str]:
    """What would make it fit: a smaller format, more devices, or CPU offload (with its cost)."""
    tips: list[str] = []
    engines = {dep.engine.name} if dep.engine else None
    for fmt in sorted(weight_format_catalog().values(), key=lambda f: -f.bits_per_weight):
        if (fmt.bits_per_weight >= dep.weights.bits_per_weight or not can_serve(fmt, dep.device, engines)
                or not fmt.is_fast_on(dep.device.kind, dep.device.features)):
            continue
        alt = replace(dep, weights=fmt)
        if _fits(alt, context):
            loss = fmt.quality_loss_pct()
            q = "quality effect unknown" if loss is None else f"quality loss {loss:.2f}% ({fmt.quality.metric})"  # type: ignore[union-attr]
            tips.append(f"--weights {fmt.name} fits ({q})")
            break
    for tp in divisors(dep.model.num_attention_heads, dep.device.max_devices_per_node):
        if tp > dep.tp and _fits(replace(dep, tp=tp), context):
            tips.append(f"--tp {tp} fits ({tp}x {dep.device.name} in one node)")
            break
    budget = _budget_that_fits(dep, context)
    if budget:
        tips.append(budget)
    if wired := _wired_limit_that_fits(dep, context):
        tips.append(wired)
    if not any("--tp" in t for t in tips):
        per_device = mem.budget_bytes - mem.overhead_bytes - mem.activation_bytes
        total = mem.weights_bytes * dep.num_devices + context * mem.kv_bytes_per_token * dep.num_devices
        if per_device > 0:
            n = math.ceil(total / per_device)
            tips.append(f"needs at least {n} devices of this type for weights plus one sequence "
                        "(e.g. --tp/--pp across nodes)")
    need = mem.shortfall_bytes + context * mem.kv_bytes_per_token
    if need > 0 and dep.device.is_gpu_like:
        host_bw = dep.device.host_load_bytes_per_s
        slow_s = need / host_bw
        tips.append(
            f"CPU offload of {need / 2**30:.1f} GiB would fit, but each decode step would stream it over the "
            f"host link at {dep.device.host_load_gb_s:g} GB/s: about {slow_s * 1e3:.0f} ms more per token"
        )
    if not tips:
        tips.append("no single-node configuration of this device fits; try a device with more memory")
    return tips


def _budget_that_fits(dep: Deployment, context: int) -> str | None:
    """A KV eviction budget with a published quality figure for this model that fits one sequence, the largest
    such figure's budget first (a what-if: no engine the launch files start runs KeyDiff)."""
    if dep.kv_budget is not None or dep.model.num_sliding_layers:
        return None
    for method in kv_eviction_catalog().values():
        for q in sorted(method.quality, key=lambda q: -q.min_budget_tokens):
            if dep.model.name not in q.models or q.min_budget_tokens >= context:
                continue
            if _fits(replace(dep, kv_budget=KVBudget(method.name, q.min_budget_tokens)), context):
                return (f"--kv-budget {method.name}:{q.min_budget_tokens} fits ({q.loss_pct:g}% worse on {q.metric}; "
                        "fit and simulate only: no engine inferplan launches runs it)")
    return None


def _wired_limit_that_fits(dep: Deployment, context: int) -> str | None:
    """On a Mac: the GPU wired limit that would hold the weights and one sequence, if it leaves macOS
    ``MACOS_KEEPS_GIB`` of memory."""
    dev = dep.device
    if dev.kind != "apple-soc":
        return None
    for gib in range(math.ceil(dev.usable_memory_bytes / 2**30), int(dev.memory_gib - MACOS_KEEPS_GIB) + 1):
        if _fits(replace(dep, device=wired(dev, gib)), context):
            return (f"--wired-limit {gib} fits: raise macOS's GPU limit with sudo sysctl "
                    f"iogpu.wired_limit_mb={sysctl_value_mb(gib)} (until reboot), leaving "
                    f"{dev.memory_gib - gib:g} GiB to macOS and other apps")
    return None


def _fits(dep: Deployment, context: int) -> bool:
    mem = plan_memory(dep)
    return mem.fits and max_concurrent_sequences(dep, mem, context) >= 1


def fit_all_formats(base: Deployment, *, context: int, prompt_tokens: int | None = None) -> list[FitResult]:
    """One FitResult per weight format an engine on this device loads (the named engine's only, where the
    deployment names one) and whose kernels the device has or can emulate."""
    engines = {base.engine.name} if base.engine else None
    results = []
    for fmt in weight_format_catalog().values():
        if not can_serve(fmt, base.device, engines):
            continue
        results.append(fit(replace(base, weights=fmt), context=context, prompt_tokens=prompt_tokens))
    return results
