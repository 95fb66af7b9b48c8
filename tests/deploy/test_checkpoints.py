"""Every weight format maps to a checkpoint the engine loads, or to a marked placeholder with a recipe."""

from __future__ import annotations

import re

import pytest

from inferplan.api import build_deployment
from inferplan.deploy.checkpoints import catalog_entry, resolve
from inferplan.specs.catalog import model_catalog, weight_format_catalog

# (model, device, weights, tp): expected repo, pre-quantized, vLLM --quantization (None: read from the checkpoint)
CASES = [
    ("llama-3.1-8b", "h100-sxm", "bf16", 1, "meta-llama/Llama-3.1-8B-Instruct", False, None),
    ("llama-3.1-8b", "h100-sxm", "fp8", 1, "RedHatAI/Meta-Llama-3.1-8B-Instruct-FP8", True, None),
    ("llama-3.1-8b", "a100-80gb", "int8", 1, "RedHatAI/Meta-Llama-3.1-8B-Instruct-quantized.w8a8", True, None),
    ("llama-3.1-8b", "l4", "int4-awq", 1, "hugging-quants/Meta-Llama-3.1-8B-Instruct-AWQ-INT4", True, None),
    ("llama-3.1-8b", "l4", "int4-gptq", 1, "hugging-quants/Meta-Llama-3.1-8B-Instruct-GPTQ-INT4", True, None),
    ("llama-3.1-8b", "l4", "nf4", 1, "meta-llama/Llama-3.1-8B-Instruct", False, "bitsandbytes"),
    ("llama-3.1-70b", "h100-sxm", "int8", 2, "RedHatAI/Meta-Llama-3.1-70B-Instruct-quantized.w8a8", True, None),
    ("qwen3-8b", "l4", "fp8", 1, "Qwen/Qwen3-8B-FP8", True, None),
    ("qwen3-8b", "l4", "int4-awq", 1, "Qwen/Qwen3-8B-AWQ", True, None),
    ("qwen2.5-7b", "l4", "fp8", 1, "Qwen/Qwen2.5-7B-Instruct", False, "fp8"),
    ("qwen2.5-7b", "a10g", "int4-gptq", 1, "Qwen/Qwen2.5-7B-Instruct-GPTQ-Int4", True, None),
    ("qwen3-30b-a3b", "h100-sxm", "fp8", 2, "Qwen/Qwen3-30B-A3B-FP8", True, None),
    ("deepseek-v3", "h200", "fp8", 8, "deepseek-ai/DeepSeek-V3", True, None),
]


@pytest.mark.parametrize(("model", "device", "weights", "tp", "repo", "prequantized", "quant"), CASES)
def test_checkpoint_by_format(model: str, device: str, weights: str, tp: int, repo: str, prequantized: bool,
                              quant: str | None) -> None:
    ck = resolve(build_deployment(model, device, weights=weights, tp=tp))
    assert (ck.repo, ck.prequantized, ck.vllm_quantization, ck.placeholder) == (repo, prequantized, quant, False)
    assert ck.source == f"https://huggingface.co/{repo}"


def test_gated_models_say_so() -> None:
    assert resolve(build_deployment("llama-3.1-8b", "l4")).gated
    assert not resolve(build_deployment("qwen3-8b", "l4")).gated


def test_no_released_checkpoint_gives_a_marked_placeholder_and_a_recipe() -> None:
    ck = resolve(build_deployment("qwen3-8b", "a100-80gb", weights="int8"))
    assert ck.placeholder and not ck.prequantized and ck.source == "" and ck.vllm_quantization is None
    assert "PLACEHOLDER" in ck.repo and "llm-compressor" in ck.note and "Qwen/Qwen3-8B" in ck.note
    assert "PLACEHOLDER" in ck.comment()
    ds = resolve(build_deployment("deepseek-v3", "h200", weights="bf16", tp=8, pp=2))
    assert ds.placeholder and "fp8_cast_bf16" in ds.note


def test_base_variant_serves_the_pretrained_repo() -> None:
    dep = build_deployment("llama-3.1-8b", "a100-80gb", weights="int8")
    assert resolve(dep, "base").repo == "RedHatAI/Meta-Llama-3.1-8B-quantized.w8a8"
    assert resolve(build_deployment("llama-3.1-8b", "l4"), "base").repo == "meta-llama/Llama-3.1-8B"
    awq = resolve(build_deployment("llama-3.1-8b", "l4", weights="int4-awq"), "base")
    assert awq.placeholder and "base" in awq.repo


def test_gguf_formats_name_the_llamacpp_type() -> None:
    ck = resolve(build_deployment("qwen3-8b", "m3-max-128gb", weights="gguf-q8_0"))
    assert (ck.repo, ck.gguf_type, ck.prequantized) == ("Qwen/Qwen3-8B-GGUF", "Q8_0", True)


def test_every_catalog_model_has_base_and_instruct_repos() -> None:
    repo = re.compile(r"[\w.-]+/[\w.-]+")
    formats = set(weight_format_catalog()) | {"gguf"}
    for name in model_catalog():
        entry = catalog_entry(name)
        assert entry is not None, name
        assert repo.fullmatch(entry["base"]) and repo.fullmatch(entry["instruct"]), name
        for key in ("formats", "base_formats"):
            for fmt, item in (entry.get(key) or {}).items():
                assert fmt in formats, (name, fmt)
                assert item.get("placeholder") or repo.fullmatch(item["repo"]), (name, fmt)


def test_a_gguf_repo_that_lacks_the_type_is_not_named() -> None:
    """SmolLM2's GGUF repo holds Q4_K_M only and TheBloke's Mixtral Q8_0 is split in parts -hf cannot join:
    other types get the conversion recipe; gpt-oss's repos hold its own format, MXFP4 experts, only."""
    smol = resolve(build_deployment("smollm2-1.7b", "raspberry-pi-5", weights="gguf-q4_k_m"))
    assert (smol.repo, smol.gguf_type, smol.prequantized) == (
        "HuggingFaceTB/SmolLM2-1.7B-Instruct-GGUF", "Q4_K_M", True)
    smol8 = resolve(build_deployment("smollm2-1.7b", "raspberry-pi-5", weights="gguf-q8_0"))
    assert smol8.placeholder and smol8.repo.endswith(".gguf") and "llama-quantize" in smol8.note
    mixtral = resolve(build_deployment("mixtral-8x7b", "m3-max-128gb", weights="gguf-q8_0"))
    assert mixtral.placeholder and "convert_hf_to_gguf" in mixtral.note
    oss = resolve(build_deployment("gpt-oss-20b", "m3-max-128gb"))  # llama.cpp on a Mac, mxfp4-moe as released
    assert (oss.repo, oss.gguf_type) == ("ggml-org/gpt-oss-20b-GGUF", "MXFP4") and "only GGUF type" in oss.note


def test_listed_gguf_types_are_llamacpp_types_of_the_catalog() -> None:
    known = {f.llamacpp_type for f in weight_format_catalog().values() if f.name.startswith("gguf-")}
    for name in model_catalog():
        item = ((catalog_entry(name) or {}).get("formats") or {}).get("gguf") or {}
        assert set(item.get("types", [])) <= known, (name, item)
