"""The drafter of a speculating replica as a model, and the memory it takes beside the target.

Memory: the drafter's weights (16-bit, split over the replica's tensor-parallel devices like the target's)
and its KV per token come out of the KV budget, as vLLM keeps the draft layers' KV in the same block pool
(``perf/memory.py`` subtracts both). Kept apart from the step costs, which ``perf/memory.py`` cannot import.
"""

from __future__ import annotations

from dataclasses import replace

from inferplan.perf.deployment import Deployment
from inferplan.specs.model import ATTN_FULL, ModelSpec

_DRAFT_BYTES = 2.0  # heads and draft models are served from their 16-bit checkpoints


def drafter_model(dep: Deployment) -> ModelSpec | None:
    """The network that drafts, as a model (None: n-gram lookup, or no speculation)."""
    spec = dep.speculation
    if spec is None or spec.method.drafter == "none":
        return None
    if spec.draft is not None:
        return spec.draft
    target, method = dep.model, spec.method
    mtp = method.drafter == "mtp"
    layers = (target.mtp_layers or 1) if mtp else method.head_layers
    moe = target.moe if mtp else None  # an MTP module is a layer of the target's kind; a head is dense
    return replace(target, name=f"{target.name}-{method.name}", num_layers=layers,
                   layer_attention=(ATTN_FULL,) * layers, sliding_window=None, moe=moe,
                   moe_layers=(moe is not None,) * layers, mla=target.mla if mtp else None,
                   vocab_size=method.draft_vocab or target.vocab_size, tie_word_embeddings=False,
                   extra_params=0, checkpoint_format=None, mtp_layers=0)


def drafter_weight_bytes(dep: Deployment) -> float:
    """Drafter weights per device: a draft model whole; a head's layers, input projection and own LM head
    (it reads the target's embedding, and the target's LM head unless it has its own vocabulary)."""
    drafter = drafter_model(dep)
    if drafter is None:
        return 0.0
    assert dep.speculation is not None
    method = dep.speculation.method
    if dep.speculation.draft is not None:
        params = drafter.params_total
    else:
        h = dep.model.hidden_size
        params = drafter.params_non_embedding + method.fused_hidden_states * h * h
        params += drafter.vocab_size * h if method.draft_vocab else 0
    return params * _DRAFT_BYTES / dep.tp


def drafter_kv_bytes_per_token(dep: Deployment) -> float:
    """KV bytes one token adds to the drafter's layers on one device."""
    drafter = drafter_model(dep)
    if drafter is None:
        return 0.0
    shards = 1 if drafter.mla is not None else min(dep.tp, drafter.num_kv_heads)
    return drafter.kv_bytes_per_token(dep.kv.bytes_per_value) / shards
