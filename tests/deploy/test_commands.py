"""Launch commands name the right checkpoint and use the flags as the pinned engines parse them."""

from __future__ import annotations

import pytest

from inferplan.api import EngineLimits, build_deployment
from inferplan.deploy.commands import (
    llama_server_command,
    model_id,
    sglang_command,
    trtllm_command,
    trtllm_notes,
    vllm_command,
)
from tests.deploy.engine_args import Refused, parse

CTX = 4096


def _pairs(cmd: list[str]) -> dict[str, str]:
    return {a: b for a, b in zip(cmd, cmd[1:], strict=False) if a.startswith("-") and not b.startswith("--")}


def test_vllm_command_carries_the_plan() -> None:
    """AWQ on Llama-3.1-70B: the released AWQ checkpoint of the Instruct model, no --quantization
    (vLLM reads awq from its config and picks Marlin), the plan's numbers, host, port and context."""
    dep = build_deployment("llama-3.1-70b", "h100-sxm", weights="int4-awq", kv="fp8", tp=2,
                           limits=EngineLimits(max_num_seqs=128, max_num_batched_tokens=4096))
    cmd = vllm_command(dep, context_tokens=CTX, port=8003)
    assert cmd[:3] == ["vllm", "serve", "hugging-quants/Meta-Llama-3.1-70B-Instruct-AWQ-INT4"]
    pairs = _pairs(cmd)
    assert pairs["--tensor-parallel-size"] == "2" and pairs["--max-num-seqs"] == "128"
    assert pairs["--kv-cache-dtype"] == "fp8" and "--quantization" not in cmd
    assert pairs["--host"] == "0.0.0.0" and pairs["--port"] == "8003" and pairs["--max-model-len"] == "4096"
    assert pairs["--served-model-name"] == "llama-3.1-70b"
    ns = parse("vllm", cmd[2:])
    assert ns.model_tag == cmd[2] and ns.port == 8003


def test_int8_serves_the_w8a8_checkpoint_not_the_bf16_repo() -> None:
    """The reported defect: int8 (W8A8) must load the W8A8 repo, never bf16 + --quantization compressed-tensors."""
    dep = build_deployment("llama-3.1-8b", "a100-80gb", weights="int8")
    cmd = vllm_command(dep, context_tokens=CTX)
    assert cmd[2] == "RedHatAI/Meta-Llama-3.1-8B-Instruct-quantized.w8a8" and "--quantization" not in cmd
    sg = sglang_command(dep, context_tokens=CTX)
    assert sg[sg.index("--model-path") + 1] == cmd[2] and "--quantization" not in sg


def test_fp8_without_a_released_checkpoint_quantizes_on_load() -> None:
    dep = build_deployment("qwen2.5-7b", "l4", weights="fp8")
    cmd = vllm_command(dep, context_tokens=CTX)
    assert cmd[2] == "Qwen/Qwen2.5-7B-Instruct" and _pairs(cmd)["--quantization"] == "fp8"
    sg = sglang_command(dep, context_tokens=CTX)
    assert _pairs(sg)["--quantization"] == "fp8"
    parse("vllm", cmd[2:])
    parse("sglang", sg[3:])


def test_max_model_len_never_exceeds_the_model() -> None:
    dep = build_deployment("llama-2-7b", "l40s")
    assert _pairs(vllm_command(dep, context_tokens=100_000))["--max-model-len"] == "4096"


def test_sglang_flags() -> None:
    dep = build_deployment("qwen3-32b", "h100-sxm", weights="fp8", kv="fp8", tp=2)
    sg = sglang_command(dep, context_tokens=CTX, port=8001)
    pairs = _pairs(sg)
    assert pairs["--model-path"] == "Qwen/Qwen3-32B-FP8" and "--quantization" not in sg
    assert pairs["--kv-cache-dtype"] == "fp8_e4m3" and pairs["--context-length"] == "4096"
    assert pairs["--host"] == "0.0.0.0" and pairs["--port"] == "8001"
    ns = parse("sglang", sg[3:])
    assert ns.tensor_parallel_size == 2 and ns.context_length == CTX


def test_trtllm_serve_flags_carry_the_engines_own_limits() -> None:
    """TensorRT-LLM's defaults (llm_args.py: 2048 requests, 8192 tokens, 0.9 of free memory, no chunking)
    spelled as trtllm-serve spells them; FP8 KV has no flag and is noted for the YAML options file."""
    dep = build_deployment("llama-3.1-70b", "h100-sxm", weights="fp8", kv="fp8", tp=4, engine="trtllm")
    cmd = trtllm_command(dep, context_tokens=CTX, port=8002)
    ns = parse("trtllm-serve", cmd[1:])
    assert (ns.tp_size, ns.max_batch_size, ns.max_num_tokens, ns.max_seq_len) == (4, 2048, 8192, CTX)
    assert ns.kv_cache_free_gpu_memory_fraction == 0.9 and not ns.enable_chunked_prefill and ns.backend == "pytorch"
    assert ns.port == 8002 and any("kv_cache_config" in n for n in trtllm_notes(dep))
    chunked = build_deployment("llama-3.1-8b", "h100-sxm", engine="trtllm", limits={"enable_chunked_prefill": True})
    assert parse("trtllm-serve", trtllm_command(chunked, context_tokens=CTX)[1:]).enable_chunked_prefill
    with pytest.raises(Refused):  # vLLM's spelling is not trtllm-serve's
        parse("trtllm-serve", ["x", "--max-num-seqs", "8"])


def test_a_flag_the_engine_lacks_is_refused() -> None:
    """The parser check can fail: SGLang spells the fp8 KV cache fp8_e4m3, vLLM's flag name is not SGLang's."""
    with pytest.raises(Refused):
        parse("sglang", ["--model-path", "x", "--kv-cache-dtype", "fp8"])
    with pytest.raises(Refused):
        parse("sglang", ["--model-path", "x", "--max-num-seqs", "8"])


def test_llama_server_uses_the_gguf_repo() -> None:
    dep = build_deployment("llama-3.2-3b", "m3-max-128gb", weights="gguf-q4_k_m", kv="int8")
    cmd = llama_server_command(dep, parallel=4, ctx_size=16384, port=8002)
    assert cmd[cmd.index("-hf") + 1] == "bartowski/Llama-3.2-3B-Instruct-GGUF:Q4_K_M"
    assert cmd[cmd.index("-np") + 1] == "4" and cmd[cmd.index("-c") + 1] == "16384"
    assert cmd[cmd.index("--port") + 1] == "8002" and cmd[cmd.index("--host") + 1] == "127.0.0.1"
    assert cmd[cmd.index("--cache-type-k") + 1] == "q8_0"


def test_llama_server_without_a_gguf_repo_names_a_placeholder_file() -> None:
    dep = build_deployment("deepseek-v2-lite", "m3-max-128gb", weights="gguf-q4_k_m")
    cmd = llama_server_command(dep, parallel=1, ctx_size=4096)
    path = cmd[cmd.index("-m") + 1]
    assert "PLACEHOLDER" in path and path.endswith(".gguf") and "-hf" not in cmd


def test_model_id_of_a_catalog_model() -> None:
    assert model_id(build_deployment("qwen3-8b", "l4")) == "Qwen/Qwen3-8B"


def test_expert_parallel_and_dp_attention_flags() -> None:
    """vLLM: --enable-expert-parallel, DP attention as --data-parallel-size with TP 1 (limits per rank);
    SGLang: --ep-size, --enable-dp-attention --dp-size, and a server-wide request limit."""
    limits = EngineLimits(max_num_seqs=64)
    ep = build_deployment("qwen3-30b-a3b", "h100-sxm", tp=4, ep=True, limits=limits)
    cmd = vllm_command(ep, context_tokens=CTX)
    assert "--enable-expert-parallel" in cmd and "--data-parallel-size" not in cmd
    assert _pairs(cmd)["--tensor-parallel-size"] == "4"
    dpa = build_deployment("deepseek-v2-lite", "h100-sxm", tp=4, dp_attention=True, limits=limits)
    cmd = vllm_command(dpa, context_tokens=CTX)
    assert cmd[2] == "deepseek-ai/DeepSeek-V2-Lite-Chat"
    assert cmd[cmd.index("--data-parallel-size") + 1] == "4" and cmd[cmd.index("--tensor-parallel-size") + 1] == "1"
    assert cmd[cmd.index("--max-num-seqs") + 1] == "64" and "--enable-expert-parallel" in cmd
    ns = parse("vllm", cmd[2:])
    assert ns.data_parallel_size == 4 and ns.enable_expert_parallel
    sg = sglang_command(dpa, context_tokens=CTX)
    assert sg[sg.index("--ep-size") + 1] == "4" and sg[sg.index("--dp-size") + 1] == "4"
    assert "--enable-dp-attention" in sg and sg[sg.index("--max-running-requests") + 1] == "256"
    ns = parse("sglang", sg[3:])
    assert ns.enable_dp_attention and ns.expert_parallel_size == 4
