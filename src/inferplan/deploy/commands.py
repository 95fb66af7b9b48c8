"""Launch commands for a chosen replica type, with flags spelled as the engines spell them.

vLLM: `vllm serve` (vllm/entrypoints/openai/cli_args.py and vllm/engine/arg_utils.py);
SGLang: `python -m sglang.launch_server` (sglang/srt/server_args.py); TensorRT-LLM: `trtllm-serve`
(tensorrt_llm/commands/serve.py); llama.cpp: `llama-server`. The flags are checked against the
argument parsers of the pinned versions below (tests/deploy/engine_options.json records those
parsers' options; trtllm-serve's, a click command that needs CUDA to import, transcribed from its source).
"""

from __future__ import annotations

import json
import shlex

from inferplan.deploy import kv_tier_flags, speculation_flags
from inferplan.deploy.checkpoints import Checkpoint, Variant, resolve, source_repo
from inferplan.perf.deployment import Deployment
from inferplan.specs.catalog import get_engine

VLLM_VERSION = "0.11.0"
SGLANG_VERSION = "0.5.3"
SGLANG_ROUTER_VERSION = "0.3.2"
TRTLLM_VERSION = "1.0.0"
VLLM_IMAGE = f"vllm/vllm-openai:v{VLLM_VERSION}"
TRTLLM_IMAGE = f"nvcr.io/nvidia/tensorrt-llm/release:{TRTLLM_VERSION}"
SGLANG_IMAGE = f"lmsysorg/sglang:v{SGLANG_VERSION}"  # the release's CUDA image (sgl-project/sglang release-docker.yml)
DEFAULT_PORT = 8000
# SGLang's P/D bootstrap server (--disaggregation-bootstrap-port; server_args.py default 8998): a decode
# server asks a prefill server's bootstrap port where to fetch a request's KV cache from
BOOTSTRAP_PORT = 8998
# KV transfer between SGLang's prefill and decode servers: NIXL (pip install nixl) runs over UCX on
# any network; mooncake, SGLang's default, needs RDMA devices (--disaggregation-ib-device)
PD_TRANSFER_BACKEND = "nixl"
# vLLM's NIXL connector for disaggregated prefill/decode (docs.vllm.ai, "Disaggregated Prefilling")
NIXL_KV_TRANSFER = json.dumps({"kv_connector": "NixlConnector", "kv_role": "kv_both"}, separators=(",", ":"))


def model_id(dep: Deployment) -> str:
    """The Hugging Face repo of a catalog model's config, or the local path the config came from."""
    return source_repo(dep)


def model_len(dep: Deployment, context_tokens: int) -> int:
    """--max-model-len: the plan's context, never past what the model's positions allow."""
    return max(1, min(context_tokens, dep.model.max_position_embeddings))


def vllm_command(dep: Deployment, *, context_tokens: int, host: str = "0.0.0.0", port: int = DEFAULT_PORT,
                 checkpoint: Checkpoint | None = None, variant: Variant = "instruct", prefix_caching: bool = True,
                 kv_transfer: bool = False) -> list[str]:
    """`vllm serve` for one replica; a pre-quantized checkpoint gets no --quantization (vLLM reads it)."""
    ck = checkpoint or resolve(dep, variant)
    lim = dep.limits
    args = ["vllm", "serve", ck.repo, "--served-model-name", dep.model.name, "--host", host, "--port", str(port),
            "--max-model-len", str(model_len(dep, context_tokens)),
            "--tensor-parallel-size", str(dep.attention_tp), "--pipeline-parallel-size", str(dep.pp)]
    if dep.dp_attention:  # one engine per DP rank, experts shared between them; limits are per rank
        args += ["--data-parallel-size", str(dep.dp)]
    if dep.ep:
        args.append("--enable-expert-parallel")
    args += ["--max-num-seqs", str(lim.max_num_seqs),
             "--max-num-batched-tokens", str(lim.max_num_batched_tokens),
             "--gpu-memory-utilization", f"{lim.gpu_memory_utilization:g}",
             "--block-size", str(lim.block_size),
             "--kv-cache-dtype", dep.kv.vllm_kv_cache_dtype or "auto"]
    if ck.vllm_quantization:
        args += ["--quantization", ck.vllm_quantization]
    args.append("--enable-chunked-prefill" if lim.enable_chunked_prefill else "--no-enable-chunked-prefill")
    args.append("--enable-prefix-caching" if prefix_caching else "--no-enable-prefix-caching")
    if kv_transfer:
        args += ["--kv-transfer-config", NIXL_KV_TRANSFER]
    return (args + priority_args(dep, "vllm") + kv_tier_flags.vllm_args(dep, kv_transfer=kv_transfer)
            + speculation_flags.vllm_args(dep))


def priority_args(dep: Deployment, engine: str) -> list[str]:
    """``engine``'s flags for priority scheduling, where the plan runs it (catalog/engines.yaml priority_flags)."""
    return list(get_engine(engine).priority_flags) if dep.limits.priority_scheduling else []


def sglang_command(dep: Deployment, *, context_tokens: int, host: str = "0.0.0.0", port: int = DEFAULT_PORT,
                   checkpoint: Checkpoint | None = None, variant: Variant = "instruct",
                   disaggregation: str | None = None, bootstrap_port: int = BOOTSTRAP_PORT) -> list[str]:
    """`python -m sglang.launch_server` for one replica, the same checkpoint as vLLM's.

    ``disaggregation``: "prefill" or "decode" for a server of a P/D pair (a prefill server
    also listens on ``bootstrap_port`` for its decode servers)."""
    ck = checkpoint or resolve(dep, variant)
    lim = dep.limits
    args = ["python", "-m", "sglang.launch_server", "--model-path", ck.repo, "--served-model-name", dep.model.name,
            "--host", host, "--port", str(port), "--context-length", str(model_len(dep, context_tokens)),
            "--tp-size", str(dep.tp)]
    if dep.pp > 1:
        args += ["--pp-size", str(dep.pp)]
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
    if ck.sglang_quantization:
        args += ["--quantization", ck.sglang_quantization]
    if disaggregation:
        args += ["--disaggregation-mode", disaggregation, "--disaggregation-transfer-backend", PD_TRANSFER_BACKEND]
        if disaggregation == "prefill":
            args += ["--disaggregation-bootstrap-port", str(bootstrap_port)]
    return args + priority_args(dep, "sglang") + kv_tier_flags.sglang_args(dep) + speculation_flags.sglang_args(dep)


def pd_router_command(prefill: list[tuple[str, int]], decode: list[str], *, host: str, port: int,
                      prefill_policy: str, decode_policy: str) -> list[str]:
    """sglang-router in P/D mode: each request prefills on one server, then decodes on another.

    ``prefill``: (URL, bootstrap port) per prefill server; ``decode``: URLs. Flags as in
    sglang_router/router_args.py (0.3.2): --prefill URL BOOTSTRAP_PORT and --decode URL repeat."""
    args = ["python", "-m", "sglang_router.launch_router", "--pd-disaggregation", "--host", host, "--port", str(port),
            "--prefill-policy", prefill_policy, "--decode-policy", decode_policy]
    for url, bootstrap in prefill:
        args += ["--prefill", url, str(bootstrap)]
    for url in decode:
        args += ["--decode", url]
    return args


def trtllm_command(dep: Deployment, *, context_tokens: int, host: str = "0.0.0.0", port: int = DEFAULT_PORT,
                   checkpoint: Checkpoint | None = None, variant: Variant = "instruct") -> list[str]:
    """`trtllm-serve` (PyTorch backend) for one replica: its limits are TensorRT-LLM's own names for the
    same knobs (max_batch_size, max_num_tokens, kv_cache_free_gpu_memory_fraction of the free memory)."""
    ck = checkpoint or resolve(dep, variant)
    lim = dep.limits
    args = ["trtllm-serve", ck.repo, "--host", host, "--port", str(port), "--backend", "pytorch",
            "--tp_size", str(dep.tp), "--pp_size", str(dep.pp)]
    if dep.ep:
        args += ["--ep_size", str(dep.tp)]
    args += ["--max_batch_size", str(lim.max_num_seqs), "--max_num_tokens", str(lim.max_num_batched_tokens),
             "--max_seq_len", str(model_len(dep, context_tokens)),
             "--kv_cache_free_gpu_memory_fraction", f"{lim.gpu_memory_utilization:g}"]
    if lim.enable_chunked_prefill:
        args.append("--enable_chunked_prefill")
    return args


def trtllm_notes(dep: Deployment, checkpoint: Checkpoint | None = None) -> list[str]:
    """What trtllm-serve takes only from an --extra_llm_api_options YAML file, and what its checkpoint must be,
    as launch-file comments."""
    notes = []
    if dep.weights.name not in ("bf16", "fp16") and not (checkpoint and checkpoint.repo.startswith("nvidia/")):
        notes.append(f"TensorRT-LLM loads {dep.weights.name} from a pre-quantized ModelOpt checkpoint (the nvidia/ "
                     "repositories on Hugging Face); if the one named here does not load, quantize with NVIDIA "
                     "ModelOpt (examples/llm_ptq/hf_ptq.py) and serve that")
    if dep.kv.name == "fp8":
        notes.append("FP8 KV cache: pass --extra_llm_api_options with kv_cache_config: {dtype: fp8}")
    if dep.dp_attention:
        notes.append("attention data parallelism: pass --extra_llm_api_options with enable_attention_dp: true")
    extra = (kv_tier_flags.trtllm_note(dep), speculation_flags.trtllm_note(dep))
    return [*notes, *(note for note in extra if note)]


def llama_server_command(dep: Deployment, *, parallel: int, ctx_size: int, host: str = "127.0.0.1",
                         port: int = DEFAULT_PORT, checkpoint: Checkpoint | None = None,
                         variant: Variant = "instruct") -> list[str]:
    """`llama-server`: a GGUF repo by type (-hf REPO:TYPE) where one is released, else a local file."""
    ck = checkpoint or resolve(dep, variant)
    lim = dep.limits
    model = ["-hf", f"{ck.repo}:{ck.gguf_type}"] if ck.prequantized and ck.gguf_type else ["-m", _gguf_path(dep, ck)]
    args = ["llama-server", *model, "--host", host, "--port", str(port),
            "-ngl", "999" if dep.device.kind != "cpu" else "0",
            "-c", str(ctx_size), "-np", str(parallel), "-b", str(lim.max_num_batched_tokens),
            "-fa", "on" if lim.flash_attention else "off"]
    if dep.kv.llamacpp_cache_type and dep.kv.llamacpp_cache_type != "f16":
        args += ["--cache-type-k", dep.kv.llamacpp_cache_type, "--cache-type-v", dep.kv.llamacpp_cache_type]
    return args + speculation_flags.llama_server_args(dep)


def _gguf_path(dep: Deployment, ck: Checkpoint) -> str:
    if ck.repo.endswith(".gguf"):
        return ck.repo
    quant = dep.weights.llamacpp_type or "F16"  # a 16-bit format served by llama.cpp: convert_hf_to_gguf output
    return f"{dep.model.name}-{quant}.gguf"


def shell(args: list[str]) -> str:
    return " ".join(shlex.quote(a) for a in args)
