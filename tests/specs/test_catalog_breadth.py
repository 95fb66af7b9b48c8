"""Catalog breadth: newer models, datacenter devices and FP4 weight formats, each checked against its source."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from inferplan.api import build_deployment
from inferplan.errors import InputError
from inferplan.specs.catalog import get_device, get_model, get_weight_format

# (model, published total, source). Totals as printed on the model card / Hugging Face page (the parameter
# count shown beside the safetensors files), or the model card's "Number of Parameters" line.
PUBLISHED_TOTAL = [
    ("llama-3.3-70b", 70.6e9, "HF meta-llama/Llama-3.3-70B-Instruct: 70.6B params"),
    ("qwen3-235b-a22b", 235e9, "Qwen/Qwen3-235B-A22B card: 235B in total"),
    ("qwen3-coder-30b-a3b", 30.5e9, "Qwen/Qwen3-Coder-30B-A3B-Instruct card: 30.5B in total"),
    ("mistral-small-24b", 23.6e9, "HF mistralai/Mistral-Small-24B-Instruct-2501: 23.6B params"),
    ("phi-4", 14.7e9, "HF microsoft/phi-4: 14.7B params"),
    ("deepseek-r1-distill-llama-8b", 8.03e9, "HF deepseek-ai/DeepSeek-R1-Distill-Llama-8B: 8.03B params"),
    ("deepseek-r1-distill-qwen-32b", 32.8e9, "HF deepseek-ai/DeepSeek-R1-Distill-Qwen-32B: 32.8B params"),
    # the model cards' totals include the vision encoder, which is not modelled (text decoders: 107.8B, 400.7B)
    ("llama-4-scout", 109e9, "meta-llama/Llama-4-Scout-17B-16E-Instruct card: 109B total"),
    ("llama-4-maverick", 400e9, "meta-llama/Llama-4-Maverick-17B-128E-Instruct card: 400B total"),
]
TOLERANCE = 0.02  # published figures carry two or three significant digits


@pytest.mark.parametrize(("name", "published", "source"), PUBLISHED_TOTAL)
def test_new_model_totals_match_published(name: str, published: float, source: str) -> None:
    """Computed total parameters are within 2% of the published figure."""
    got = get_model(name).params_total
    assert abs(got - published) / published < TOLERANCE, f"{name}: {got / 1e9:.3f}B vs {source}"


# Qwen counts active parameters with both embedding tables (as params_active does): 22.19B and 3.35B computed.
PUBLISHED_ACTIVE = [
    ("qwen3-235b-a22b", 22e9, "Qwen/Qwen3-235B-A22B card: 22B activated"),
    ("qwen3-coder-30b-a3b", 3.3e9, "Qwen/Qwen3-Coder-30B-A3B-Instruct card: 3.3B activated"),
    ("llama-4-scout", 17e9, "meta-llama/Llama-4-Scout-17B-16E-Instruct card: 17B activated"),
    ("llama-4-maverick", 17e9, "meta-llama/Llama-4-Maverick-17B-128E-Instruct card: 17B activated"),
]


@pytest.mark.parametrize(("name", "published", "source"), PUBLISHED_ACTIVE)
def test_new_moe_active_parameters_match_published(name: str, published: float, source: str) -> None:
    """MoE active parameters per token are within 2% of the model card's figure."""
    m = get_model(name)
    assert m.is_moe
    assert abs(m.params_active - published) / published < TOLERANCE, f"{name}: {m.params_active / 1e9:.3f}B vs {source}"


# Gemma 3 technical report (arXiv:2503.19786), Table 1: non-embedding parameters of the text decoder.
def test_kimi_k2_is_deepseek_v3s_architecture_at_its_published_size() -> None:
    """moonshotai/Kimi-K2-Instruct model card: 1T total and 32B activated parameters (rounded to the trillion
    and the billion, so within 5%); config.json model_type kimi_k2 reads as DeepSeek-V3."""
    m = get_model("kimi-k2")
    assert m.params_total == pytest.approx(1e12, rel=0.05) and m.params_active == pytest.approx(32e9, rel=0.05)
    assert m.moe is not None and (m.moe.num_experts, m.moe.top_k) == (384, 8) and m.num_layers == 61


GEMMA3_NON_EMBEDDING = [("gemma-3-4b", 3_209e6), ("gemma-3-27b", 25_600e6)]


@pytest.mark.parametrize(("name", "published"), GEMMA3_NON_EMBEDDING)
def test_gemma3_non_embedding_matches_technical_report(name: str, published: float) -> None:
    """Gemma 3 4B / 27B text decoders: 3,209M / 25,600M non-embedding parameters (tech report Table 1)."""
    got = get_model(name).params_non_embedding
    assert abs(got - published) / published < 0.001, f"{name}: {got / 1e6:.0f}M vs {published / 1e6:.0f}M"


def test_gemma3_27b_keeps_five_local_layers_per_global() -> None:
    """Gemma 3 27B: 62 layers, every sixth global (10 full, 52 sliding with a 1,024-token window)."""
    m = get_model("gemma-3-27b")
    assert (m.num_layers, m.num_full_layers, m.sliding_window) == (62, 10, 1024)


# Datasheet facts: (device, memory GiB, bandwidth GB/s, dense bf16 TFLOPS, peak power W, max devices per node).
DATASHEET = [
    ("gh200", 95, 4000, 989.4, 1000, 1),  # GH200 datasheet, 96 GB HBM3 variant
    ("gb200", 185, 8000, 2500, 1200, 72),  # GB200 NVL72 rack totals / 72, sparsity removed
    ("rtx-pro-6000-blackwell", 95, 1597, 500, 600, 8),  # RTX PRO 6000 Blackwell Server Edition
    ("l40", 45, 864, 181, 300, 8),  # L40 datasheet: 181.05 dense 16-bit
    ("a40", 45, 696, 149.7, 300, 8),  # A40 datasheet
    ("a30", 24, 933, 165, 165, 8),  # A30 datasheet
    ("a100-pcie-40gb", 40, 1555, 312, 250, 8),  # A100 datasheet, PCIe 40GB
    ("a100-pcie-80gb", 80, 1935, 312, 300, 8),  # A100 datasheet, PCIe 80GB
    ("v100-sxm2-32gb", 32, 900, 125, 300, 8),  # V100 datasheet: fp16 tensor only (bf16 falls back)
    ("mi250x", 64, 1638.4, 191.5, 280, 8),  # MI250X module figures / 2 GCDs
    ("mi325x", 256, 6000, 1307.4, 1000, 8),  # MI325X product page
    ("mi355x", 288, 8000, 2516.6, 1400, 8),  # MI355X product page
    ("gaudi3", 128, 3670, 1835, 900, 8),  # Gaudi 3, Hot Chips 2024
]


@pytest.mark.parametrize(("name", "mem", "bw", "bf16", "power", "per_node"), DATASHEET)
def test_new_device_datasheet_numbers(name: str, mem: float, bw: float, bf16: float, power: float,
                                      per_node: int) -> None:
    """Each new device loads with its datasheet memory, bandwidth, dense bf16 peak, power and node size."""
    d = get_device(name)
    assert d.source and d.kind == "datacenter-gpu"
    assert (d.memory_gib, d.memory_bw_gb_s, d.peak_power_w, d.max_devices_per_node) == (mem, bw, power, per_node)
    assert d.peak_flops("bf16") == pytest.approx(bf16 * 1e12)
    assert d.price_per_hour_usd is None or (d.price_date and d.price_source)


def test_fp8_and_fp4_peaks_of_new_devices() -> None:
    """Dense FP8 and FP4 peaks: FP8 twice BF16 where the device has FP8; FP4 twice FP8 on FP4 hardware."""
    assert get_device("gb200").peak_flops("fp4") == pytest.approx(10_000e12)
    assert get_device("b200").peak_flops("fp4") == pytest.approx(9_000e12)
    assert get_device("mi355x").peak_flops("fp4") == pytest.approx(10_066.3e12)
    assert get_device("gaudi3").peak_flops("fp8") == pytest.approx(1_835e12)  # Gaudi 3 MME: FP8 = BF16 rate
    assert not get_device("v100").has_fast("bf16") and not get_device("mi250x").has_fast("fp8")


def test_fp4_features_only_on_fp4_hardware() -> None:
    """Blackwell has NVFP4 and MXFP4 kernels; MI355X only MXFP4; Hopper neither."""
    for name in ("b200", "gb200", "rtx-pro-6000-blackwell", "rtx-5090"):
        assert {"nvfp4", "mxfp4"} <= set(get_device(name).features), name
    assert "mxfp4" in get_device("mi355x").features and "nvfp4" not in get_device("mi355x").features
    for name in ("h100-sxm", "h200", "gh200", "mi300x", "a100-80gb"):
        assert not {"nvfp4", "mxfp4"} & set(get_device(name).features), name


def test_fp4_formats_bits_and_alias() -> None:
    """NVFP4: 4 + 8/16 bits (E4M3 scale per 16); MXFP4: 4 + 8/32 (E8M0 scale per 32); 'fp4' names NVFP4."""
    nv, mx = get_weight_format("nvfp4"), get_weight_format("mxfp4")
    assert nv.bits_per_weight == 4 + 8 / 16 and mx.bits_per_weight == 4 + 8 / 32
    assert get_weight_format("fp4").name == "nvfp4"
    assert nv.requires == ("nvfp4",) and nv.quality is not None and nv.quality.source
    assert mx.quality is not None and mx.quality.source
    assert {"vllm", "sglang", "trtllm"} <= set(nv.engines) and {"vllm", "sglang", "trtllm"} <= set(mx.engines)


def test_nvfp4_refused_on_h100() -> None:
    """H100 has no FP4 tensor cores: asking for NVFP4 weights there is a clear input error."""
    with pytest.raises(InputError, match="nvfp4.*h100-sxm"):
        build_deployment("llama-3.1-8b", "h100-sxm", weights="nvfp4")


def test_nvfp4_accepted_on_b200_and_smaller_than_fp8() -> None:
    """B200 runs NVFP4 on its FP4 tensor cores: the deployment builds, with 4.5-bit weights."""
    dep = build_deployment("llama-3.1-8b", "b200", weights="nvfp4")
    assert dep.weights.name == "nvfp4"
    assert dep.weights.is_fast_on(dep.device.kind, dep.device.features)
    fp8 = build_deployment("llama-3.1-8b", "b200", weights="fp8")
    assert dep.weights.bytes_per_weight < fp8.weights.bytes_per_weight


def test_mxfp4_runs_without_fp4_hardware() -> None:
    """gpt-oss's MXFP4 runs weight-only on Hopper (no requires), but only Blackwell/MI355X count as fast."""
    h100 = build_deployment("gpt-oss-20b", "h100-sxm")
    assert h100.weights.name == "mxfp4-moe"
    assert not h100.weights.is_fast_on(h100.device.kind, h100.device.features)
    mi355x = build_deployment("gpt-oss-20b", "mi355x")
    assert mi355x.weights.is_fast_on(mi355x.device.kind, mi355x.device.features)


# OpenAI's gpt-oss model card, Table 1: checkpoint sizes 60.8 GiB (120b) and 12.8 GiB (20b), MXFP4 experts and the
# rest in BF16
@pytest.mark.parametrize(("name", "gib"), [("gpt-oss-120b", 60.8), ("gpt-oss-20b", 12.8)])
def test_gpt_oss_is_priced_as_released(name: str, gib: float) -> None:
    from inferplan.perf.fit import fit

    dep = build_deployment(name, "h100-sxm")
    result = fit(dep, context=8192)
    assert result.weights_bytes / 2**30 == pytest.approx(gib, rel=0.01)
    assert result.quality_loss_pct == 0.0  # the checkpoint is the model; another model's MXFP4 loss is not its
    with pytest.raises(InputError, match="declares a mxfp4-moe checkpoint"):
        build_deployment(name, "h100-sxm", weights="bf16")


def test_cli_fit_nvfp4_on_b200() -> None:
    """`inferplan fit llama-3.1-8b b200 --weights nvfp4 --json` succeeds and reports the format."""
    out = subprocess.run([sys.executable, "-m", "inferplan.cli", "fit", "llama-3.1-8b", "b200", "--weights", "nvfp4",
                          "--json"], capture_output=True, text=True, check=False, timeout=120)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["weights_format"] == "nvfp4" and doc["fits"]


def test_llama4_layers_follow_its_config() -> None:
    """Scout routes every layer, Maverick every other one (dense ones 16,384 wide); RoPE layers attend within
    8,192-token chunks, modelled as that window, and every fourth (NoPE) layer globally."""
    scout, maverick = get_model("llama-4-scout"), get_model("llama-4-maverick")
    assert all(scout.moe_layers) and maverick.moe_layers == tuple(i % 2 == 1 for i in range(48))
    assert maverick.intermediate_size == 16384 and maverick.moe is not None and maverick.moe.num_experts == 128
    assert maverick.moe.num_shared_experts == 1 and maverick.moe.expert_intermediate_size == 8192
    assert scout.sliding_window == 8192
    assert [a == "full" for a in scout.layer_attention] == [(i + 1) % 4 == 0 for i in range(48)]


def test_mistral_small_3_1_is_mistral_small_3s_decoder_with_a_longer_context() -> None:
    new, old = get_model("mistral-small-3.1-24b"), get_model("mistral-small-24b")
    assert new.params_total == old.params_total and new.max_position_embeddings == 131072
    assert "Pixtral" in new.extra_params_note


def test_a_mistral3_config_without_its_text_decoder_is_refused() -> None:
    from inferplan.specs.hf_config import spec_from_hf_config

    with pytest.raises(InputError, match="mistral3 needs a 'text_config'"):
        spec_from_hf_config({"model_type": "mistral3", "vision_config": {}}, name="cfg.json")
