"""KV layout: how a sequence's tokens become KV pages when some layers keep only a sliding window.

A model whose layers all attend to the whole context needs one page per block of tokens, and
a page holds every layer's KV for that block. Sliding-window layers (Gemma 2/3, gpt-oss,
Mistral 7B v0.1) keep only the last ``w`` tokens, and every engine we model frees what falls out
of the window, so a long sequence needs far fewer bytes than ``context x bytes per token``.

The engines page that differently; ``EngineSpec.sliding_window_kv`` names the rule:

- ``grouped`` (vLLM V1's hybrid KV cache manager, vllm/v1/core/kv_cache_utils.py
  ``_get_kv_cache_groups_uniform_page_size``): layers of one attention type are split into groups
  of ``group_size`` layers, the smallest type's layer count (or the largest's when that is under
  1.5x the smallest), the last group of a type padded; every group draws pages of ``group_size``
  layers from one pool. A sliding group drops the blocks before its window
  (vllm/v1/core/single_type_kv_cache_manager.py ``SlidingWindowManager.remove_skipped_blocks``),
  keeping ``cdiv(w, block) + 1`` at most.
- ``per-layer`` (SGLang's SWA pool; also any engine's KV eviction budget): each layer holds KV for the
  tokens it keeps, nothing padded; pages are groups of ``gcd`` layers.
- ``swa-cells`` (llama.cpp, src/llama-kv-cache-iswa.cpp): the sliding layers get a cache of
  ``pad256(min(n_ctx, n_swa + n_ubatch))`` cells per sequence, the full layers one of ``n_ctx``.

- ``full`` (TensorRT-LLM unless per-layer windows are given): every layer keeps the whole context, the
  plain layout. A model without sliding layers has one page per block of all layers: the plain layout.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # fit and the catalog verbs load no numpy (tests/cli/test_startup.py)
    import numpy as np
    import numpy.typing as npt

LLAMA_CPP_UBATCH = 512  # llama-server's default n_ubatch (common/common.h)


@dataclass(frozen=True, slots=True)
class KVLayout:
    """Pages one sequence holds per block of ``block_size`` tokens, for each kind of layer."""

    block_size: int
    full_pages: int = 1  # pages per block of the full-attention layers
    sliding_pages: int = 0  # pages per block of the sliding-window layers, up to ``window_blocks`` blocks
    window_blocks: int = 0  # blocks a sliding layer keeps at most
    layers_per_page: int = 0  # layers one page spans (padding included): its bytes are theirs

    @property
    def windowed(self) -> bool:
        return self.sliding_pages > 0

    @property
    def pages_per_block(self) -> int:
        """Pages a block of tokens costs while every layer still keeps it (the sequence is within the window)."""
        return self.full_pages + self.sliding_pages

    def blocks(self, tokens: int) -> int:
        """Pages a sequence of ``tokens`` holds."""
        b = -(-tokens // self.block_size)
        if not self.sliding_pages:
            return self.full_pages * b
        return self.full_pages * b + self.sliding_pages * min(b, self.window_blocks)

    def blocks_of(self, tokens: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """``blocks`` for each entry of an array of token counts."""
        b = -(-tokens // self.block_size)
        out: npt.NDArray[np.int64] = self.full_pages * b + self.sliding_pages * b.clip(None, self.window_blocks)
        return out


def plain_layout(block_size: int, num_layers: int) -> KVLayout:
    return KVLayout(block_size, layers_per_page=num_layers)


def windowed_layout(rule: str, block_size: int, full_layers: int, sliding_layers: int, window: int,
                    slot_context: int = 0) -> KVLayout:
    """The layout ``rule`` gives a model with ``full_layers`` and ``sliding_layers`` (window ``window``)."""
    if rule == "grouped":
        group = _vllm_group_size(full_layers, sliding_layers)
        full, sliding = -(-full_layers // group), -(-sliding_layers // group)
        return KVLayout(block_size, full, sliding, -(-window // block_size) + 1, group)
    group = math.gcd(full_layers, sliding_layers)
    full, sliding = full_layers // group, sliding_layers // group
    if rule == "per-layer":
        return KVLayout(block_size, full, sliding, -(-window // block_size) + 1, group)
    if rule == "swa-cells":
        cells = window + LLAMA_CPP_UBATCH
        if slot_context:
            cells = min(-(-slot_context // 256) * 256, cells)
        cells = -(-cells // 256) * 256
        return KVLayout(block_size, full, sliding, -(-cells // block_size), group)
    raise ValueError(f"unknown sliding-window KV rule {rule!r}")


def _vllm_group_size(full_layers: int, sliding_layers: int) -> int:
    """vLLM's group size: the smaller type's layer count, or the larger's when that is under 1.5x it."""
    counts = [n for n in (full_layers, sliding_layers) if n]
    small, large = min(counts), max(counts)
    return large if large < small * 1.5 else small
