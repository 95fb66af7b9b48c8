"""Launch commands for a chosen replica type, with flags spelled as the engines spell them.

vLLM: `vllm serve` engine arguments (docs.vllm.ai, "Engine Arguments"); SGLang:
`python -m sglang.launch_server` server arguments; llama.cpp: `llama-server` options.
"""

from __future__ import annotations

import re
import shlex

from inferplan.perf.deployment import Deployment

_HF = re.compile(r"huggingface\.co/([^/]+/[^/]+)/")


def model_id(dep: Deployment) -> str:
    """The Hugging Face repo of a catalog model, or the local path the config came from."""
    m = _HF.search(dep.model.source)
    return m.group(1) if m else (dep.model.source.rsplit("/config.json", 1)[0] or dep.model.name)


def checkpoint_note(dep: Deployment) -> str:
    if dep.weights.name in ("bf16", "fp16"):
        return ""
    note = f"# use a {dep.weights.display_name or dep.weights.name} checkpoint of {model_id(dep)}"
    if dep.weights.name == "fp8":
        note += " (or a 16-bit one: vLLM quantizes to fp8 on load)"
    return note


def vllm_command(dep: Deployment, *, prefix_caching: bool = True) -> list[str]:
    lim = dep.limits
    args = ["vllm", "serve", model_id(dep),
            "--tensor-parallel-size", str(dep.attention_tp),
            "--pipeline-parallel-size", str(dep.pp)]
    if dep.dp_attention:  # one engine per DP rank, experts shared between them; limits are per rank
        args += ["--data-parallel-size", str(dep.dp)]
    if dep.ep:
        args.append("--enable-expert-parallel")
    args += ["--max-num-seqs", str(lim.max_num_seqs),
             "--max-num-batched-tokens", str(lim.max_num_batched_tokens),
             "--gpu-memory-utilization", f"{lim.gpu_memory_utilization:g}",
             "--block-size", str(lim.block_size),
             "--kv-cache-dtype", dep.kv.vllm_kv_cache_dtype or "auto"]
    if dep.weights.vllm_quantization:
        args += ["--quantization", dep.weights.vllm_quantization]
    args.append("--enable-chunked-prefill" if lim.enable_chunked_prefill else "--no-enable-chunked-prefill")
    args.append("--enable-prefix-caching" if prefix_caching else "--no-enable-prefix-caching")
    return args


_SGLANG_QUANT = {"awq_marlin": "awq", "gptq_marlin": "gptq", "fp8": "fp8", "bitsandbytes": "bitsandbytes",
                 "compressed-tensors": "compressed-tensors"}


def sglang_command(dep: Deployment) -> list[str]:
    lim = dep.limits
    args = ["python", "-m", "sglang.launch_server", "--model-path", model_id(dep),
            "--tp-size", str(dep.tp)]
    if dep.ep:
        args += ["--ep-size", str(dep.tp)]
    if dep.dp_attention:
        args += ["--enable-dp-attention", "--dp-size", str(dep.dp)]
    # SGLang's request limit is for the whole server; it gives each DP rank an equal share
    args += ["--max-running-requests", str(lim.max_num_seqs * dep.dp),
             "--chunked-prefill-size", str(lim.max_num_batched_tokens),
             "--mem-fraction-static", f"{lim.gpu_memory_utilization:g}"]
    if dep.kv.name == "fp8":
        args += ["--kv-cache-dtype", "fp8_e4m3"]
    quant = _SGLANG_QUANT.get(dep.weights.vllm_quantization or "")
    if quant:
        args += ["--quantization", quant]
    return args


def llama_server_command(dep: Deployment, *, parallel: int, ctx_size: int) -> list[str]:
    lim = dep.limits
    quant = dep.weights.llamacpp_type or "F16"
    args = ["llama-server", "-m", f"{dep.model.name}-{quant}.gguf",
            "-ngl", "999" if dep.device.kind != "cpu" else "0",
            "-c", str(ctx_size), "-np", str(parallel), "-b", str(min(lim.max_num_batched_tokens, 2048))]
    if dep.kv.llamacpp_cache_type and dep.kv.llamacpp_cache_type != "f16":
        args += ["--cache-type-k", dep.kv.llamacpp_cache_type, "--cache-type-v", dep.kv.llamacpp_cache_type]
    return args


def shell(args: list[str]) -> str:
    return " ".join(shlex.quote(a) for a in args)
