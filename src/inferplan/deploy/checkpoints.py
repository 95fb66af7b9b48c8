"""Which checkpoint a replica serves, and which quantization flags the engine needs for it.

A weight format is a property of the checkpoint, not a flag: vLLM and SGLang read the method
from the checkpoint's ``config.json`` (``quantization_config.quant_method``) and refuse a
``--quantization`` that disagrees with it. Only two formats are made on load from 16-bit
weights: FP8 (vLLM and SGLang ``--quantization fp8``, dynamic scales) and NF4 (vLLM
``--quantization bitsandbytes``, in-flight). INT8 W8A8, AWQ and GPTQ need a checkpoint
quantized beforehand; ``checkpoints.yaml`` names released ones with their model cards.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, Literal

import yaml

from inferplan.perf.deployment import Deployment
from inferplan.perf.kernels import gguf_blocks
from inferplan.specs.model import ModelSpec

Variant = Literal["instruct", "base"]
HF = "https://huggingface.co/"
_HF_REPO = re.compile(r"huggingface\.co/([^/]+/[^/]+)/")
ONLINE_FP8_NOTE = "vLLM/SGLang quantize the 16-bit weights to FP8 on load (--quantization fp8, dynamic scales)"
ONLINE_NF4_NOTE = "vLLM quantizes the 16-bit weights to NF4 on load (--quantization bitsandbytes)"
# How to make a checkpoint the engines can load, for the formats they cannot make on load.
_RECIPES = {
    "int8": "quantize it with llm-compressor (github.com/vllm-project/llm-compressor): SmoothQuantModifier + "
            "GPTQModifier(scheme='W8A8'), saved in compressed-tensors format",
    "int4-awq": "quantize it with llm-compressor AWQModifier(scheme='W4A16_ASYM'), or AutoAWQ (group size 128)",
    "int4-gptq": "quantize it with llm-compressor GPTQModifier(scheme='W4A16'), or GPTQModel (4 bit, group size 128)",
    "ternary-1.58": "a ternary GGUF (llama.cpp TQ2_0, e.g. converted from a BitNet b1.58 release)",
    "dfloat11": "DFloat11 compression (no vLLM/SGLang/llama.cpp support: serve with the DFloat11 reference code)",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Checkpoint:
    """What to load: a repository (or a placeholder path), and whether it already holds the format."""

    repo: str
    prequantized: bool
    source: str  # model card URL; "" for a placeholder or a local path
    note: str
    placeholder: bool = False
    gated: bool = False
    vllm_quantization: str | None = None  # passed only for quantization made on load
    sglang_quantization: str | None = None
    gguf_type: str | None = None  # llama.cpp type inside a GGUF repo (llama-server -hf REPO:TYPE)

    def comment(self) -> str:
        """One launch.sh comment line: which checkpoint and why; a placeholder says how to make one."""
        kind = "PLACEHOLDER, no released checkpoint" if self.placeholder else (
            "pre-quantized" if self.prequantized else "16-bit")
        where = f" ({self.source})" if self.source else ""
        return f"# checkpoint: {self.repo} [{kind}]{where}" + (f": {self.note}" if self.note else "")


@cache
def _catalog() -> dict[str, Any]:
    text = (resources.files("inferplan.specs") / "catalog" / "checkpoints.yaml").read_text()
    data = yaml.safe_load(text)
    assert isinstance(data, dict)
    return data


def catalog_entry(model: str) -> dict[str, Any] | None:
    """The checkpoints.yaml entry of a catalog model (None for a model given as a config file)."""
    entry = _catalog().get(model)
    return entry if isinstance(entry, dict) else None


def source_repo(dep: Deployment) -> str:
    """The repo the model's config.json came from, or the local folder of a config file."""
    return repo_of(dep.model.source, dep.model.name)


def model_repo(model: ModelSpec, variant: Variant = "instruct") -> str:
    """A model's 16-bit checkpoint of ``variant`` (checkpoints.yaml), else the repo its config.json came from."""
    entry = catalog_entry(model.name)
    return str(entry[variant]) if entry else repo_of(model.source, model.name)


def repo_of(source: str, name: str) -> str:
    """The Hugging Face repo a config.json ``source`` names, or its local folder (``name`` if neither)."""
    m = _HF_REPO.search(source)
    return m.group(1) if m else (source.rsplit("/config.json", 1)[0] or name)


def placeholder_path(dep: Deployment, variant: Variant) -> str:
    """A path that cannot be mistaken for a real repo: the user puts their own checkpoint there."""
    return f"/models/PLACEHOLDER-{dep.model.name}-{variant}-{dep.weights.name}"


def resolve(dep: Deployment, variant: Variant = "instruct") -> Checkpoint:
    """The checkpoint and flags for ``dep``: a released pre-quantized repo where one is known,
    quantization on load where the engine does it, else a marked placeholder with a recipe."""
    entry = catalog_entry(dep.model.name)
    gated = bool(entry and entry.get("gated"))
    repo16 = model_repo(dep.model, variant)
    fmt = dep.weights.name
    listed = (entry or {}).get("formats" if variant == "instruct" else "base_formats") or {}
    key = "gguf" if is_gguf(dep) else fmt
    if key in listed and _has_type(dep, listed[key]):
        return _listed(dep, listed[key], variant, gated)
    if fmt in ("bf16", "fp16", "fp32"):
        return Checkpoint(repo=repo16, prequantized=False, source=_card(repo16), note=_model_note(entry),
                          gated=gated)
    if fmt == "fp8":
        return Checkpoint(repo=repo16, prequantized=False, source=_card(repo16), note=ONLINE_FP8_NOTE, gated=gated,
                          vllm_quantization="fp8", sglang_quantization="fp8")
    if fmt == "nf4":
        return Checkpoint(repo=repo16, prequantized=False, source=_card(repo16), note=ONLINE_NF4_NOTE, gated=gated,
                          vllm_quantization="bitsandbytes")
    return _placeholder(dep, variant, repo16, gated)


def is_gguf(dep: Deployment) -> bool:
    """Whether the replica loads a quantized GGUF file: a GGUF format, or a block type llama.cpp serves
    (gpt-oss's MXFP4_MOE); 16-bit weights under llama.cpp come from the 16-bit repo, converted."""
    return dep.weights.name.startswith("gguf-") or gguf_blocks(dep)


def _has_type(dep: Deployment, item: dict[str, Any]) -> bool:
    """A GGUF repo that lists its ``types`` holds only those files (llama-server -hf REPO:TYPE finds no other)."""
    types = item.get("types")
    return not (types and is_gguf(dep) and not item.get("serve_type") and dep.weights.llamacpp_type not in types)


def _listed(dep: Deployment, item: dict[str, Any], variant: Variant, gated: bool) -> Checkpoint:
    if item.get("placeholder"):
        return Checkpoint(repo=placeholder_path(dep, variant), prequantized=False, source="", placeholder=True,
                          note=str(item.get("note", "")), gated=gated)
    repo = str(item["repo"])
    gguf = dep.weights.llamacpp_type if is_gguf(dep) else None
    note = f"quant_method {item['method']} read from the checkpoint's config" if item.get("method") else ""
    if gguf and item.get("serve_type"):  # the repo's one type, whatever GGUF type the plan assumed
        gguf = str(item["serve_type"])
        note = f"the repo's only GGUF type, {gguf}, for any GGUF format (llama-server -hf {repo}:{gguf})"
    elif gguf:
        note = f"GGUF file of type {gguf} from this repo (llama-server -hf {repo}:{gguf})"
    return Checkpoint(repo=repo, prequantized=True, source=_card(repo), note=note, gated=gated, gguf_type=gguf)


def _placeholder(dep: Deployment, variant: Variant, repo16: str, gated: bool) -> Checkpoint:
    fmt = dep.weights.name
    if is_gguf(dep):
        recipe = (f"convert {repo16} with llama.cpp convert_hf_to_gguf.py, then "
                  f"llama-quantize model-f16.gguf out.gguf {dep.weights.llamacpp_type}")
        path = placeholder_path(dep, variant) + ".gguf"
    else:
        recipe = _RECIPES.get(fmt, f"quantize {repo16} to {fmt} with a tool your engine loads")
        path = placeholder_path(dep, variant)
    return Checkpoint(repo=path, prequantized=False, source="", placeholder=True, gated=gated,
                      note=f"no released {dep.weights.display_name or fmt} checkpoint of {repo16} is known: {recipe}",
                      gguf_type=dep.weights.llamacpp_type if is_gguf(dep) else None)


def _card(repo: str) -> str:
    """A model card URL for a hub repo id (owner/name); "" for a local path."""
    return HF + repo if re.fullmatch(r"[\w.-]+/[\w.-]+", repo) else ""


def _model_note(entry: dict[str, Any] | None) -> str:
    return str(entry.get("note", "")) if entry else ""
