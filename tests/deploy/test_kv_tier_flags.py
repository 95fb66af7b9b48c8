"""A host-memory KV tier in launch commands: each engine's spelling of the tier that was simulated, parsed by
the pinned engines' own argument parsers."""

from __future__ import annotations

import json

import pytest

from inferplan.api import EngineLimits, build_deployment
from inferplan.deploy.commands import sglang_command, trtllm_notes, vllm_command
from inferplan.errors import InputError
from inferplan.perf.memory import host_tier_blocks, kv_layout
from tests.deploy.engine_args import parse

CTX = 4096
TIER = EngineLimits(enable_prefix_caching=True, cpu_kv_cache_gib=64)


def _pairs(cmd: list[str]) -> dict[str, str]:
    return {a: b for a, b in zip(cmd, cmd[1:], strict=False) if a.startswith("-") and not b.startswith("--")}


def test_vllm_offloads_the_simulated_blocks_through_its_offloading_connector() -> None:
    """64 GiB for Llama-3.1-8B (128 KiB per token, 16-token blocks of 2 MiB) on one H100: 32,768 CPU blocks,
    the number the simulated tier holds (vllm/v1/kv_offload/cpu.py takes num_cpu_blocks per worker)."""
    dep = build_deployment("llama-3.1-8b", "h100-sxm", limits=TIER)
    assert host_tier_blocks(dep) == 64 * 2**30 // (128 * 1024 * 16) == 32_768
    cmd = vllm_command(dep, context_tokens=CTX)
    config = json.loads(_pairs(cmd)["--kv-transfer-config"])
    assert config == {"kv_connector": "OffloadingConnector", "kv_role": "kv_both",
                      "kv_connector_extra_config": {"num_cpu_blocks": 32_768}}
    ns = parse("vllm", cmd[2:])
    assert ns.enable_prefix_caching
    two = build_deployment("llama-3.1-8b", "h100-sxm", tp=2, limits=TIER)
    assert host_tier_blocks(two) == 32_768  # each worker keeps its half of every block
    with pytest.raises(InputError, match="NIXL KV connector"):
        vllm_command(dep, context_tokens=CTX, kv_transfer=True)


def test_sglang_gets_hicache_per_rank_in_whole_gb_and_trtllm_a_host_cache_note() -> None:
    """sglang/srt/server_args.py: --hicache-size is an int of GB per rank (64 GiB over TP2: 34.4 GB each, 34)."""
    dep = build_deployment("llama-3.1-8b", "h100-sxm", tp=2, engine="sglang", limits=TIER)
    cmd = sglang_command(dep, context_tokens=CTX)
    assert "--enable-hierarchical-cache" in cmd and _pairs(cmd)["--hicache-size"] == "34"
    ns = parse("sglang", cmd[3:])
    assert ns.enable_hierarchical_cache and ns.hicache_size == 34
    trt = build_deployment("llama-3.1-8b", "h100-sxm", engine="trtllm", limits=TIER)
    assert any(f"host_cache_size: {64 * 2**30}" in note for note in trtllm_notes(trt))
    plain = build_deployment("llama-3.1-8b", "h100-sxm")
    assert "--kv-transfer-config" not in vllm_command(plain, context_tokens=CTX)


def test_vllm_pages_sliding_windows_in_full_where_a_connector_runs() -> None:
    """vLLM turns its hybrid KV cache manager off when a KV connector is configured, so Gemma-3 with a CPU tier
    keeps full-length pages on the device; SGLang keeps its SWA pool with HiCache."""
    tiered = build_deployment("gemma-3-27b", "h100-sxm", limits=TIER)
    assert not kv_layout(tiered).windowed
    assert kv_layout(build_deployment("gemma-3-27b", "h100-sxm")).windowed
    assert kv_layout(build_deployment("gemma-3-27b", "h100-sxm", engine="sglang", limits=TIER)).windowed
