"""llama.cpp's compute buffer: what ggml-backend reserves for the worst-case graph, on each device.

At start-up llama.cpp reserves the prompt graph of one ubatch with every token an output and the KV cache
full (src/llama-context.cpp: ``memory->init_full()``, then ``graph_reserve(n_tokens, n_seqs, n_tokens)``
with ``n_tokens = min(n_ctx, n_ubatch)``). ggml-alloc reuses a tensor's memory once its last reader has
run, so the buffer is the largest set of f32 tensors alive at once, which is one of three stages:

- the output layer: the normed hidden state and the logits of every token (``n_tokens x n_vocab``);
- attention without flash attention: the KQ scores of every head over the whole cache view
  (``n_kv x n_tokens x n_head``; ``ggml_soft_max_ext`` runs in place), beside Q and the residual;
- the MLP: its gate and up projections (per routed expert of a token for a MoE), beside the residual.

For Llama 3 8B at n_ubatch 512 the output stage is 512 x (128256 + 4096) x 4 B = 258.5 MiB, the
"compute buffer size = 258.50 MiB" llama.cpp prints for it.
"""

from __future__ import annotations

from inferplan.perf.deployment import Deployment
from inferplan.perf.kv_layout import LLAMA_CPP_UBATCH

_F32 = 4


def ubatch_tokens(dep: Deployment) -> int:
    """Tokens of one ubatch: llama-server's n_ubatch, which cannot exceed its n_batch (-b)."""
    return min(LLAMA_CPP_UBATCH, dep.limits.max_num_batched_tokens)


def score_bytes_per_cell(dep: Deployment) -> float:
    """Bytes the KQ scores take per KV cell of the attention view (0 with flash attention: never stored)."""
    if dep.limits.flash_attention:
        return 0.0
    return ubatch_tokens(dep) * dep.model.num_attention_heads / dep.attention_tp * _F32


def fixed_stage_bytes(dep: Deployment) -> float:
    """The larger of the output-layer and MLP stages, which do not depend on the cache."""
    m, n = dep.model, ubatch_tokens(dep)
    logits = n * (m.vocab_size + m.hidden_size) * _F32
    inter = m.moe.expert_intermediate_size * m.moe.top_k if m.moe else m.intermediate_size
    mlp = n * (2 * inter / dep.tp + m.hidden_size) * _F32
    return max(logits, mlp)


def attention_base_bytes(dep: Deployment) -> float:
    """The attention stage's tensors besides the scores: Q and the residual stream."""
    return ubatch_tokens(dep) * 2 * dep.model.hidden_size * _F32


def compute_bytes(dep: Deployment, view_cells: int) -> float:
    """The buffer for an attention view of ``view_cells`` KV cells (a slot's cells with split KV)."""
    attention = attention_base_bytes(dep) + score_bytes_per_cell(dep) * view_cells
    return max(fixed_stage_bytes(dep), attention)
