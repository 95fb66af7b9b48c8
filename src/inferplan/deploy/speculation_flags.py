"""Speculative decoding in launch files: each engine's own flags for the drafter and k that were simulated.

vLLM: ``--speculative-config`` JSON (vllm/config/speculative.py: method, model, num_speculative_tokens);
SGLang: ``--speculative-algorithm`` with ``--speculative-draft-model-path``, ``--speculative-num-steps``,
``--speculative-eagle-topk`` 1 (a chain, as simulated) and ``--speculative-num-draft-tokens`` k + 1
(sglang/srt/server_args.py); TensorRT-LLM: ``speculative_config`` in the --extra_llm_api_options YAML
(decoding_type, max_draft_len, speculative_model_dir; tensorrt_llm/llmapi/llm_args.py); llama.cpp:
``--spec-type`` with ``--spec-draft-model``/``--spec-draft-n-max`` or ``--spec-ngram-simple-size-m``
(common/arg.cpp). The method's name in each engine comes from ``catalog/speculation.yaml``.
"""

from __future__ import annotations

import json

from inferplan.deploy.checkpoints import model_repo
from inferplan.perf.deployment import Deployment
from inferplan.specs.speculation import Speculation


def drafter_repo(dep: Deployment) -> str | None:
    """Where the drafter's weights come from: a head's public checkpoint, the draft model's repo, or None (the
    target's own MTP layers, or n-gram lookup)."""
    spec = dep.speculation
    if spec is None:
        return None
    if spec.draft is not None:
        return model_repo(spec.draft)
    return spec.head(dep.model.name)


def _engine_name(spec: Speculation, engine: str) -> str:
    return spec.method.engines[engine]


def vllm_args(dep: Deployment) -> list[str]:
    spec = dep.speculation
    if spec is None:
        return []
    config: dict[str, object] = {"method": _engine_name(spec, "vllm"), "num_speculative_tokens": spec.k}
    repo = drafter_repo(dep)
    if repo:
        config["model"] = repo
    return ["--speculative-config", json.dumps(config, separators=(",", ":"))]


def sglang_args(dep: Deployment) -> list[str]:
    spec = dep.speculation
    if spec is None:
        return []
    args = ["--speculative-algorithm", _engine_name(spec, "sglang")]
    repo = drafter_repo(dep)
    if repo:
        args += ["--speculative-draft-model-path", repo]
    if spec.method.drafter != "none":
        args += ["--speculative-num-steps", str(spec.k), "--speculative-eagle-topk", "1"]
    return [*args, "--speculative-num-draft-tokens", str(spec.k + 1)]


def trtllm_note(dep: Deployment) -> str | None:
    """The speculative_config a trtllm-serve --extra_llm_api_options YAML must hold (None: no speculation)."""
    spec = dep.speculation
    if spec is None:
        return None
    fields = [f"decoding_type: {_engine_name(spec, 'trtllm')}", f"max_draft_len: {spec.k}"]
    repo = drafter_repo(dep)
    if repo:
        fields.append(f"speculative_model_dir: {repo}")
    if spec.method.drafter == "mtp":
        fields.append(f"num_nextn_predict_layers: {spec.k}")
    return ("speculative decoding: pass --extra_llm_api_options with speculative_config: {"
            + ", ".join(fields) + "}")


def llama_server_args(dep: Deployment, draft_gguf: str | None = None) -> list[str]:
    """``draft_gguf``: the draft model's GGUF file (default: its name with the target's quantization)."""
    spec = dep.speculation
    if spec is None:
        return []
    kind = _engine_name(spec, "llamacpp")
    if spec.draft is None:  # n-gram lookup: the draft length is the n-gram's continuation
        return ["--spec-type", kind, "--spec-ngram-simple-size-m", str(spec.k)]
    quant = dep.weights.llamacpp_type or "F16"
    return ["--spec-type", kind, "--spec-draft-model", draft_gguf or f"{spec.draft.name}-{quant}.gguf",
            "--spec-draft-n-max", str(spec.k)]
