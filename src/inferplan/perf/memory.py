"""Memory: weights + activation workspace + engine overhead; what is left is KV cache, in blocks.

The engine's memory rule decides the budget. vLLM and SGLang (fraction-of-total) take
``gpu_memory_utilization`` of the device, subtract the weights, the peak activations of a
profiling run at ``max_num_batched_tokens`` and the engine's own reserve, and page the rest
into blocks. TensorRT-LLM (fraction-of-free) gives the KV cache that fraction of the memory
left free once the weights, activations and reserve are allocated. llama.cpp (as-mapped) has
no fraction: what the device can use is the budget.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from inferplan.perf import compute_buffer
from inferplan.perf.deployment import Deployment
from inferplan.perf.drafter import drafter_kv_bytes_per_token, drafter_weight_bytes
from inferplan.perf.kv_layout import KVLayout, plain_layout, windowed_layout

GIB = 1024**3
_ACT_BYTES = 2  # activations in 16-bit
_LOGIT_BYTES = 4  # sampler works on fp32 logits


@dataclass(frozen=True, slots=True)
class MemoryPlan:
    """Per-device memory breakdown of one replica, in bytes."""

    capacity_bytes: float  # usable device memory
    budget_bytes: float  # what the engine may use: weights, activations, reserve and KV
    weights_bytes: float
    activation_bytes: float
    overhead_bytes: float
    kv_budget_bytes: float
    kv_bytes_per_token: float  # per device, all layers, before sliding caps
    block_size: int
    num_kv_blocks: int  # pages (KVLayout), summed over the replica's KV caches
    kv_caches: int = 1  # data-parallel attention: one cache per rank, and a sequence lives in one
    layout: KVLayout | None = None  # how tokens become pages (None: one page per block of all layers)
    page_bytes: float = 0.0  # bytes of one page on one device

    @property
    def blocks_per_cache(self) -> int:
        """The most blocks one sequence can hold."""
        return self.num_kv_blocks // self.kv_caches

    @property
    def fits(self) -> bool:
        """Weights and workspace fit and at least one KV block remains."""
        return self.num_kv_blocks >= 1

    @property
    def kv_capacity_tokens(self) -> int:
        """Tokens the cache holds while every layer keeps them (sequences within any sliding window)."""
        per_block = self.layout.pages_per_block if self.layout else 1
        return self.num_kv_blocks // per_block * self.block_size

    @property
    def reserve_bytes(self) -> float:
        return self.capacity_bytes - self.budget_bytes

    @property
    def shortfall_bytes(self) -> float:
        """How much more memory would be needed for one KV block (0 when it fits)."""
        need = (self.weights_bytes + self.activation_bytes + self.overhead_bytes
                + self.block_size * self.kv_bytes_per_token)
        return max(0.0, need - self.budget_bytes)


def weights_bytes(dep: Deployment) -> float:
    """Weight bytes per device. Formats that leave embeddings unquantized keep them in 16-bit."""
    m, fmt = dep.model, dep.weights
    embed = m.embedding_params + m.lm_head_params
    body = m.params_total - embed
    embed_bytes = fmt.bytes_per_weight if fmt.quantizes_embeddings else max(2.0, fmt.bytes_per_weight)
    routed = m.params_routed_experts
    if dep.dp_attention:  # every rank keeps all but the routed experts; those are split between ranks
        per_rank = ((body - routed) * fmt.dense_bytes_per_weight + embed * embed_bytes
                    + routed * fmt.bytes_per_weight / dep.tp)
        return per_rank / dep.pp
    if fmt.experts_only:  # the routed experts in the format, everything else 16-bit
        dense = (body - routed) * fmt.dense_bytes_per_weight
        return (dense + routed * fmt.bytes_per_weight + embed * embed_bytes) / dep.num_devices
    return (body * fmt.bytes_per_weight + embed * embed_bytes) / dep.num_devices


def kv_bytes_per_token_per_device(dep: Deployment) -> float:
    """KV bytes one token adds on one device: layers split by PP, heads by TP (up to the KV head count)."""
    return dep.model.kv_bytes_per_token(dep.kv.bytes_per_value) / (dep.pp * dep.kv_shards)


def activation_bytes(dep: Deployment) -> float:
    """Peak workspace of a forward pass over ``max_num_batched_tokens`` plus the sampler's logits.

    Per token: residual, norm output, attention output and Q/K/V (~4 hidden + qkv width)
    and the gated MLP's two intermediate tensors, sharded by TP.
    """
    m, lim = dep.model, dep.limits
    qkv = (m.num_attention_heads + 2 * m.num_kv_heads) * m.head_dim / dep.attention_tp
    inter = m.moe.expert_intermediate_size * m.moe.top_k if m.moe else m.intermediate_size
    per_token = (4 * m.hidden_size + qkv + 2 * inter / dep.tp) * _ACT_BYTES
    logits = lim.max_num_seqs * m.vocab_size * _LOGIT_BYTES / dep.attention_tp
    return lim.max_num_batched_tokens * per_token + logits


def plan_memory(dep: Deployment) -> MemoryPlan:
    capacity = dep.device.usable_memory_bytes
    engine, fraction = dep.serving_engine, dep.limits.gpu_memory_utilization
    weights = weights_bytes(dep) + drafter_weight_bytes(dep)  # a speculating replica's drafter beside the target
    overhead = engine.reserve_on(dep.device.kind) * GIB  # CUDA context, graphs, communicator buffers, slack
    as_mapped = engine.memory_rule == "as-mapped"
    act = _llamacpp_buffer(dep, capacity - weights - overhead) if as_mapped else activation_bytes(dep)
    if engine.memory_rule == "fraction-of-free":
        budget = weights + act + overhead + fraction * max(0.0, capacity - weights - act - overhead)
    else:
        budget = capacity if engine.memory_rule == "as-mapped" else capacity * fraction
    kv_budget = budget - weights - act - overhead
    per_token = _replica_kv_bytes_per_token(dep)
    layout = kv_layout(dep)
    page_bytes = _page_bytes(dep, layout, per_token)
    blocks = max(0, math.floor(kv_budget / page_bytes)) if kv_budget > 0 else 0
    if dep.limits.slot_context:  # llama.cpp allocates its slots' cells up front: all of them, or it fails
        allocated = dep.limits.max_num_seqs * layout.blocks(slot_cells(dep.limits.slot_context))
        blocks = allocated if allocated <= blocks else 0
    return MemoryPlan(
        capacity_bytes=capacity,
        budget_bytes=budget,
        weights_bytes=weights,
        activation_bytes=act,
        overhead_bytes=overhead,
        kv_budget_bytes=max(0.0, kv_budget),
        kv_bytes_per_token=per_token,
        block_size=dep.limits.block_size,
        num_kv_blocks=blocks * dep.dp,  # data-parallel attention: each rank has a cache of its own
        kv_caches=dep.dp,
        layout=layout,
        page_bytes=page_bytes,
    )


def _llamacpp_buffer(dep: Deployment, room: float) -> float:
    """llama.cpp's compute buffer (perf/compute_buffer.py). Without flash attention its scores span the cache
    view: a slot's cells where slots are set, else the cache memory allows once the scores are paid for."""
    if dep.limits.slot_context:
        return compute_buffer.compute_bytes(dep, slot_cells(dep.limits.slot_context))
    per_score = compute_buffer.score_bytes_per_cell(dep)
    if not per_score:
        return compute_buffer.compute_bytes(dep, 0)
    per_cell = _replica_kv_bytes_per_token(dep)
    fixed, base = compute_buffer.fixed_stage_bytes(dep), compute_buffer.attention_base_bytes(dep)
    cells = max(0.0, min((room - fixed) / per_cell, (room - base) / (per_cell + per_score)))
    return compute_buffer.compute_bytes(dep, int(cells))


def kv_layout(dep: Deployment) -> KVLayout:
    """How the engine pages this model's KV: plain, or with sliding-window layers keeping only the window.
    A drafter's layers attend to everything, so they count with the full-attention layers."""
    m, bs = dep.model, dep.limits.block_size
    # vLLM turns its hybrid KV cache manager off where a KV connector runs (the CPU tier's OffloadingConnector):
    # vllm/config VllmConfig.__post_init__, "Hybrid KV cache manager is not compatible with KV transfer"
    hybrid_off = dep.serving_engine.name == "vllm" and dep.limits.cpu_kv_cache_gib > 0
    window = dep.attention_window
    if window is None or hybrid_off:
        return plain_layout(bs, m.num_layers)
    drafter = math.ceil(drafter_kv_bytes_per_token(dep) / _layer_bytes(dep) - 1e-9)
    full, sliding = dep.attention_layers
    rule = dep.serving_engine.sliding_window_kv
    if dep.kv_budget is not None:  # an eviction budget pages like a window over every layer, nothing padded
        rule = "grouped" if rule == "grouped" else "per-layer"
    return windowed_layout(rule, bs, full + drafter, sliding, window, dep.limits.slot_context)


def host_tier_blocks(dep: Deployment) -> int:
    """Blocks of the host KV tier on each device: its share of ``cpu_kv_cache_gib`` in blocks of all layers (what
    vLLM's OffloadingConnector takes as ``num_cpu_blocks`` per worker)."""
    per_token = _replica_kv_bytes_per_token(dep)
    return int(dep.limits.cpu_kv_cache_gib * 2**30 / dep.num_devices / (per_token * dep.limits.block_size))


def _replica_kv_bytes_per_token(dep: Deployment) -> float:
    """KV bytes one token adds on one device: the target's layers and a speculating replica's drafter."""
    return kv_bytes_per_token_per_device(dep) + drafter_kv_bytes_per_token(dep)


def _layer_bytes(dep: Deployment) -> float:
    """KV bytes one token adds to one layer on one device."""
    return dep.model.kv_bytes_per_token(dep.kv.bytes_per_value) / dep.model.num_layers / dep.kv_shards


def _page_bytes(dep: Deployment, layout: KVLayout, per_token: float) -> float:
    """One page on one device: a block of all layers (plain), or of ``layers_per_page`` layers."""
    if not layout.windowed:
        return per_token * dep.limits.block_size
    return _layer_bytes(dep) * layout.layers_per_page * dep.limits.block_size / dep.pp


def slot_cells(context: int) -> int:
    """KV cells llama.cpp gives a slot of ``context`` tokens: rounded up to 256 (src/llama-context.cpp)."""
    return -(-context // 256) * 256


def blocks_for_context(dep: Deployment, context_tokens: int, layout: KVLayout | None = None) -> int:
    """Pages one sequence needs. Sliding-window layers keep only the window, so they need fewer."""
    return (layout or kv_layout(dep)).blocks(context_tokens)


def max_context(dep: Deployment, mem: MemoryPlan) -> int:
    """The longest single sequence the KV cache holds, capped at the model's position limit."""
    limit = dep.model.max_position_embeddings
    if not mem.fits:
        return 0
    blocks = mem.blocks_per_cache
    if blocks_for_context(dep, limit, mem.layout) <= blocks:
        return limit
    lo, hi = 0, limit
    while lo < hi:  # largest context whose blocks fit
        mid = (lo + hi + 1) // 2
        if blocks_for_context(dep, mid, mem.layout) <= blocks:
            lo = mid
        else:
            hi = mid - 1
    return lo


def max_concurrent_sequences(dep: Deployment, mem: MemoryPlan, context_tokens: int) -> int:
    """Sequences of ``context_tokens`` that fit at once (memory only; max_num_seqs caps it separately)."""
    need = blocks_for_context(dep, max(1, context_tokens), mem.layout)
    return (mem.blocks_per_cache // need) * mem.kv_caches if need else 0
