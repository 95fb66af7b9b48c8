"""A host-memory KV tier in launch files: each engine's own flags for the tier that was simulated.

vLLM: ``--kv-transfer-config`` with its OffloadingConnector and ``num_cpu_blocks`` per worker
(vllm/distributed/kv_transfer/kv_connector/v1/offloading_connector.py, vllm/v1/kv_offload/cpu.py
CPUOffloadingSpec); SGLang: ``--enable-hierarchical-cache --hicache-size GB`` per rank
(sglang/srt/server_args.py, HiCache); TensorRT-LLM: ``kv_cache_config.host_cache_size`` bytes in the
--extra_llm_api_options YAML (tensorrt_llm/llmapi/llm_args.py KvCacheConfig); llama.cpp has none.
"""

from __future__ import annotations

import json
import math

from inferplan.errors import InputError
from inferplan.perf.deployment import Deployment
from inferplan.perf.memory import host_tier_blocks


def vllm_args(dep: Deployment, *, kv_transfer: bool = False) -> list[str]:
    """The OffloadingConnector with the simulated tier's blocks (``kv_transfer``: the replica already runs the
    NIXL connector of a P/D pair, which vLLM 0.11 cannot combine with it here)."""
    if not dep.limits.cpu_kv_cache_gib:
        return []
    if kv_transfer:
        raise InputError("a vLLM prefill/decode replica already uses the NIXL KV connector; a CPU KV tier "
                         "(--cpu-kv-cache) cannot be launched beside it: drop one of them")
    config = {"kv_connector": "OffloadingConnector", "kv_role": "kv_both",
              "kv_connector_extra_config": {"num_cpu_blocks": host_tier_blocks(dep)}}
    return ["--kv-transfer-config", json.dumps(config, separators=(",", ":"))]


def sglang_args(dep: Deployment) -> list[str]:
    """HiCache with the tier's share per rank, in whole GB (rounded down: never more host memory than planned)."""
    gib = dep.limits.cpu_kv_cache_gib
    if not gib:
        return []
    per_rank_gb = max(1, math.floor(gib * 2**30 / dep.num_devices / 1e9))
    return ["--enable-hierarchical-cache", "--hicache-size", str(per_rank_gb)]


def trtllm_note(dep: Deployment) -> str | None:
    gib = dep.limits.cpu_kv_cache_gib
    if not gib:
        return None
    per_rank = int(gib * 2**30 / dep.num_devices)
    return ("CPU KV tier: pass --extra_llm_api_options with kv_cache_config: {enable_block_reuse: true, "
            f"host_cache_size: {per_rank}}}")
