"""Launch commands use the flags as each engine spells them, with the plan's numbers."""

from __future__ import annotations

from inferplan.api import EngineLimits, build_deployment
from inferplan.deploy.commands import llama_server_command, model_id, sglang_command, vllm_command

SGLANG_FLAGS = {"--model-path", "--tp-size", "--max-running-requests", "--chunked-prefill-size",
                "--mem-fraction-static", "--kv-cache-dtype", "--quantization"}
LLAMA_SERVER_FLAGS = {"-m", "-ngl", "-c", "-np", "-b", "--cache-type-k", "--cache-type-v"}


def test_vllm_command_carries_the_plan() -> None:
    dep = build_deployment("llama-3.1-70b", "h100-sxm", weights="int4-awq", kv="fp8", tp=2,
                           limits=EngineLimits(max_num_seqs=128, max_num_batched_tokens=4096))
    cmd = vllm_command(dep)
    assert cmd[:3] == ["vllm", "serve", "meta-llama/Llama-3.1-70B"]
    pairs = dict(zip(cmd[3::2], cmd[4::2], strict=False))
    assert pairs["--tensor-parallel-size"] == "2" and pairs["--max-num-seqs"] == "128"
    assert pairs["--kv-cache-dtype"] == "fp8" and pairs["--quantization"] == "awq_marlin"


def test_sglang_flags() -> None:
    dep = build_deployment("qwen3-32b", "h100-sxm", weights="fp8", kv="fp8", tp=2)
    flags = {w for w in sglang_command(dep) if w.startswith("--")}
    assert flags <= SGLANG_FLAGS and "--tp-size" in flags


def test_llama_server_flags() -> None:
    dep = build_deployment("llama-3.2-3b", "m3-max-128gb", weights="gguf-q4_k_m", kv="int8")
    cmd = llama_server_command(dep, parallel=4, ctx_size=16384)
    flags = {w for w in cmd if w.startswith("-")}
    assert flags <= LLAMA_SERVER_FLAGS
    assert cmd[cmd.index("-np") + 1] == "4" and cmd[cmd.index("-c") + 1] == "16384"
    assert cmd[cmd.index("-m") + 1].endswith("Q4_K_M.gguf") and cmd[cmd.index("--cache-type-k") + 1] == "q8_0"


def test_model_id_of_a_catalog_model() -> None:
    assert model_id(build_deployment("qwen3-8b", "l4")) == "Qwen/Qwen3-8B"


def test_expert_parallel_and_dp_attention_flags() -> None:
    """vLLM: --enable-expert-parallel, DP attention as --data-parallel-size with TP 1 (limits per rank);
    SGLang: --ep-size, --enable-dp-attention --dp-size, and a server-wide request limit."""
    limits = EngineLimits(max_num_seqs=64)
    ep = build_deployment("qwen3-30b-a3b", "h100-sxm", tp=4, ep=True, limits=limits)
    cmd = vllm_command(ep)
    assert "--enable-expert-parallel" in cmd and "--data-parallel-size" not in cmd
    assert dict(zip(cmd[3::2], cmd[4::2], strict=False))["--tensor-parallel-size"] == "4"
    dpa = build_deployment("deepseek-v2-lite", "h100-sxm", tp=4, dp_attention=True, limits=limits)
    cmd = vllm_command(dpa)
    i = cmd.index("--data-parallel-size")
    assert cmd[i + 1] == "4" and cmd[cmd.index("--tensor-parallel-size") + 1] == "1"
    assert cmd[cmd.index("--max-num-seqs") + 1] == "64" and "--enable-expert-parallel" in cmd
    sg = sglang_command(dpa)
    assert sg[sg.index("--ep-size") + 1] == "4" and sg[sg.index("--dp-size") + 1] == "4"
    assert "--enable-dp-attention" in sg and sg[sg.index("--max-running-requests") + 1] == "256"
    flags = {w for w in sg if w.startswith("--")}
    assert flags <= SGLANG_FLAGS | {"--ep-size", "--enable-dp-attention", "--dp-size"}
