"""ModelSpec: the architecture facts of a decoder-only LLM that cost and memory depend on.

A spec is built from a Hugging Face ``config.json`` (see ``hf_config.py``) and is
immutable. Everything the performance model needs is derived from it: exact
parameter counts (total and active per token), the per-layer operator list with
FLOPs and weight sizes, and KV-cache bytes per token for each layer kind.
"""

from __future__ import annotations

from dataclasses import dataclass, field

ATTN_FULL = "full"
ATTN_SLIDING = "sliding"


@dataclass(frozen=True, slots=True, kw_only=True)
class MoESpec:
    """Routed mixture-of-experts MLP (Mixtral, Qwen3-MoE, DeepSeek, GPT-OSS)."""

    num_experts: int
    top_k: int
    expert_intermediate_size: int
    num_shared_experts: int = 0
    shared_intermediate_size: int = 0
    router_bias: bool = False
    expert_bias: bool = False  # bias vectors inside each expert (GPT-OSS)
    score_correction_bias: bool = False  # DeepSeek-V3 aux-loss-free routing bias


@dataclass(frozen=True, slots=True, kw_only=True)
class MLASpec:
    """Multi-head latent attention (DeepSeek-V2/V3): the KV cache holds a compressed latent."""

    q_lora_rank: int | None
    kv_lora_rank: int
    qk_nope_head_dim: int
    qk_rope_head_dim: int
    v_head_dim: int


@dataclass(frozen=True, slots=True, kw_only=True)
class LinearOp:
    """One weight matrix family in a layer.

    ``params`` is what is stored; ``active_params`` is what one token multiplies
    through (they differ only for routed experts). ``num_experts``/``top_k`` let
    the perf model estimate how many experts a batch touches.
    """

    name: str
    params: int
    active_params: int
    num_experts: int = 1
    top_k: int = 1

    @property
    def flops_per_token(self) -> int:
        """2 FLOPs (multiply + add) per active weight per token."""
        return 2 * self.active_params


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelSpec:
    """Architecture of one decoder-only transformer, as far as cost and memory go."""

    name: str
    model_type: str
    hidden_size: int
    num_layers: int
    vocab_size: int
    num_attention_heads: int
    num_kv_heads: int
    head_dim: int
    intermediate_size: int
    max_position_embeddings: int
    tie_word_embeddings: bool = False
    qkv_bias: bool = False
    o_bias: bool = False
    qk_norm: bool = False
    attention_sinks: bool = False
    norms_per_layer: int = 2
    layer_attention: tuple[str, ...] = ()  # ATTN_FULL / ATTN_SLIDING per layer
    sliding_window: int | None = None
    moe: MoESpec | None = None
    moe_layers: tuple[bool, ...] = ()  # True where the layer's MLP is routed
    mla: MLASpec | None = None
    extra_params: int = 0  # parameters outside the decoder (e.g. a vision tower), not costed
    extra_params_note: str = ""
    source: str = ""
    note: str = ""
    # the weight format of the checkpoint itself, read from config.json's quantization_config (None: 16-bit)
    checkpoint_format: str | None = None
    released_in_checkpoint_format: str = ""  # why that format is the model as released (no quality lost), or ""
    mtp_layers: int = 0  # multi-token-prediction layers the checkpoint carries (num_nextn_predict_layers)
    _layer_counts: tuple[int, int, int] = field(init=False, repr=False, compare=False, default=(0, 0, 0))

    @property
    def default_weights(self) -> str:
        """The weight format to serve when none is asked for: the checkpoint's own, else bf16."""
        return self.checkpoint_format or "bf16"

    def __post_init__(self) -> None:
        if not self.layer_attention:
            object.__setattr__(self, "layer_attention", (ATTN_FULL,) * self.num_layers)
        if not self.moe_layers:
            object.__setattr__(self, "moe_layers", (self.moe is not None,) * self.num_layers)
        if len(self.layer_attention) != self.num_layers or len(self.moe_layers) != self.num_layers:
            raise ValueError(f"{self.name}: per-layer lists must have num_hidden_layers={self.num_layers} entries")
        object.__setattr__(self, "_layer_counts", self._count_layers())

    # ---- attention --------------------------------------------------------------------
    def attention_ops(self) -> tuple[LinearOp, ...]:
        h, nh, kv, hd = self.hidden_size, self.num_attention_heads, self.num_kv_heads, self.head_dim
        if self.mla is not None:
            m = self.mla
            qk_dim = m.qk_nope_head_dim + m.qk_rope_head_dim
            ops: list[LinearOp] = []
            if m.q_lora_rank:
                ops.append(_op("q_a_proj", h * m.q_lora_rank + m.q_lora_rank))  # + its RMSNorm
                ops.append(_op("q_b_proj", m.q_lora_rank * nh * qk_dim))
            else:
                ops.append(_op("q_proj", h * nh * qk_dim))
            ops.append(_op("kv_a_proj", h * (m.kv_lora_rank + m.qk_rope_head_dim) + m.kv_lora_rank))
            ops.append(_op("kv_b_proj", m.kv_lora_rank * nh * (m.qk_nope_head_dim + m.v_head_dim)))
            ops.append(_op("o_proj", nh * m.v_head_dim * h))
            return tuple(ops)
        qkv = h * (nh + 2 * kv) * hd + (nh + 2 * kv) * hd * self.qkv_bias
        qkv += 2 * hd * self.qk_norm + nh * self.attention_sinks
        o = nh * hd * h + h * self.o_bias
        return (_op("qkv_proj", qkv), _op("o_proj", o))

    # ---- MLP --------------------------------------------------------------------------
    def dense_mlp_ops(self) -> tuple[LinearOp, ...]:
        return (_op("mlp", 3 * self.hidden_size * self.intermediate_size),)

    def moe_mlp_ops(self) -> tuple[LinearOp, ...]:
        assert self.moe is not None
        m, h = self.moe, self.hidden_size
        per_expert = 3 * h * m.expert_intermediate_size
        if m.expert_bias:
            per_expert += 2 * m.expert_intermediate_size + h
        router = h * m.num_experts + m.num_experts * (m.router_bias or m.score_correction_bias)
        ops = [
            _op("router", router),
            LinearOp(
                name="experts",
                params=m.num_experts * per_expert,
                active_params=m.top_k * per_expert,
                num_experts=m.num_experts,
                top_k=m.top_k,
            ),
        ]
        if m.num_shared_experts:
            ops.append(_op("shared_experts", m.num_shared_experts * 3 * h * m.shared_intermediate_size))
        return tuple(ops)

    def layer_ops(self, layer: int) -> tuple[LinearOp, ...]:
        """Weight-bearing operators of one decoder layer (norms folded into ``norms``)."""
        mlp = self.moe_mlp_ops() if self.moe_layers[layer] else self.dense_mlp_ops()
        norms = _op("norms", self.norms_per_layer * self.hidden_size)
        return (*self.attention_ops(), *mlp, norms)

    # ---- parameter counts ---------------------------------------------------------
    @property
    def embedding_params(self) -> int:
        return self.vocab_size * self.hidden_size

    @property
    def lm_head_params(self) -> int:
        """Untied output projection; 0 when it shares the embedding matrix."""
        return 0 if self.tie_word_embeddings else self.vocab_size * self.hidden_size

    def _count_layers(self) -> tuple[int, int, int]:
        """(stored, active-per-token, stored in routed experts) parameters summed over decoder layers."""
        total = active = routed = 0
        cache: dict[bool, tuple[int, int, int]] = {}
        for layer, is_moe in enumerate(self.moe_layers):
            if is_moe not in cache:
                ops = self.layer_ops(layer)
                cache[is_moe] = (sum(o.params for o in ops), sum(o.active_params for o in ops),
                                 sum(o.params for o in ops if o.num_experts > 1))
            total += cache[is_moe][0]
            active += cache[is_moe][1]
            routed += cache[is_moe][2]
        return total, active, routed

    @property
    def params_routed_experts(self) -> int:
        """Parameters stored in routed experts: what expert parallelism splits across devices."""
        return self._layer_counts[2]

    @property
    def params_non_embedding(self) -> int:
        """Decoder layers plus the final norm: the 'non-embedding' count papers report."""
        return self._layer_counts[0] + self.hidden_size

    @property
    def params_total(self) -> int:
        return self.params_non_embedding + self.embedding_params + self.lm_head_params

    @property
    def params_active(self) -> int:
        """Parameters one token touches: every layer's active weights plus both embedding tables."""
        return self._layer_counts[1] + self.hidden_size + self.embedding_params + self.lm_head_params

    @property
    def params_active_excluding_input_embedding(self) -> int:
        """Active count without the embedding lookup table (OpenAI's convention for GPT-OSS)."""
        untied_lookup = self.embedding_params if not self.tie_word_embeddings else 0
        return self.params_active - untied_lookup

    @property
    def is_moe(self) -> bool:
        return self.moe is not None

    # ---- KV cache -------------------------------------------------------------------
    @property
    def kv_values_per_token_per_layer(self) -> int:
        """Cached scalars per token per layer: K and V heads, or MLA's latent + rope key."""
        if self.mla is not None:
            return self.mla.kv_lora_rank + self.mla.qk_rope_head_dim
        return 2 * self.num_kv_heads * self.head_dim

    @property
    def num_sliding_layers(self) -> int:
        return sum(1 for a in self.layer_attention if a == ATTN_SLIDING)

    @property
    def num_full_layers(self) -> int:
        return self.num_layers - self.num_sliding_layers

    def kv_bytes_per_token(self, bytes_per_value: float = 2.0) -> float:
        """KV bytes one token adds across all layers (before any sliding-window cap)."""
        return self.num_layers * self.kv_values_per_token_per_layer * bytes_per_value

    def kv_bytes_for_context(self, context_tokens: int, bytes_per_value: float = 2.0) -> float:
        """KV bytes one sequence of ``context_tokens`` holds; sliding layers keep only the window."""
        per_layer = self.kv_values_per_token_per_layer * bytes_per_value
        window_tokens = min(context_tokens, self.sliding_window or context_tokens)
        return per_layer * (self.num_full_layers * context_tokens + self.num_sliding_layers * window_tokens)

    # ---- attention compute -------------------------------------------------------------
    @property
    def attention_flops_per_query_key(self) -> int:
        """FLOPs of one query attending to one key in one layer: QK^T and PV, 2 FLOPs per MAC.

        For MLA in the absorbed form used at decode, q·k runs over nope+rope and
        the value over v_head_dim per head.
        """
        if self.mla is not None:
            m = self.mla
            return 2 * self.num_attention_heads * (m.qk_nope_head_dim + m.qk_rope_head_dim + m.v_head_dim)
        return 4 * self.num_attention_heads * self.head_dim

    @property
    def linear_flops_per_token(self) -> int:
        """Matmul FLOPs of one token through every layer and the LM head."""
        return 2 * (self._layer_counts[1] + self.vocab_size * self.hidden_size)

    @property
    def max_tensor_parallel(self) -> int:
        return self.num_kv_heads if self.mla is None else self.num_attention_heads

    def describe(self) -> str:
        parts = [f"{self.num_layers} layers", f"hidden {self.hidden_size}"]
        if self.mla is not None:
            parts.append(f"MLA (latent {self.mla.kv_lora_rank})")
        else:
            parts.append(f"{self.num_attention_heads} heads / {self.num_kv_heads} KV heads")
        if self.num_sliding_layers:
            parts.append(f"{self.num_sliding_layers} sliding-window layers (w={self.sliding_window})")
        if self.moe is not None:
            shared = f" + {self.moe.num_shared_experts} shared" if self.moe.num_shared_experts else ""
            parts.append(f"MoE {self.moe.top_k}/{self.moe.num_experts}{shared}")
        return ", ".join(parts)


def _op(name: str, params: int) -> LinearOp:
    return LinearOp(name=name, params=params, active_params=params)
