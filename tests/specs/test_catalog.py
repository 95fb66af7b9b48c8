"""Device and format catalogs: complete, sourced, and validated on load."""

from __future__ import annotations

from pathlib import Path

import pytest

from inferplan.errors import InputError
from inferplan.specs.catalog import (
    device_catalog,
    get_device,
    get_kv_format,
    get_weight_format,
    kv_format_catalog,
    load_device_file,
    weight_format_catalog,
)

REQUIRED_DEVICES = ["t4", "l4", "a10g", "l40s", "a100-40gb", "a100-80gb", "h100-sxm", "h100-pcie", "h200", "b200",
                    "mi300x", "rtx-3090", "rtx-4090", "rtx-5090", "m1-16gb", "m2-pro-32gb", "m2-max-96gb",
                    "m2-ultra-192gb", "m3-max-128gb", "m4-pro-64gb", "m4-max-128gb", "jetson-agx-orin-64gb",
                    "jetson-orin-nano-8gb", "raspberry-pi-5", "xeon-8480", "core-ultra-7-155h", "snapdragon-8-gen3"]


def test_catalog_has_the_required_devices_with_sources() -> None:
    """At least 25 devices, every one with a datasheet source."""
    cat = device_catalog()
    assert len(cat) >= 25
    assert set(REQUIRED_DEVICES) <= set(cat)
    assert all(d.source for d in cat.values())


def test_every_price_has_a_date_and_source() -> None:
    """A price without a date and a source is refused by the schema."""
    for d in device_catalog().values():
        if d.price_per_hour_usd is not None:
            assert d.price_date and d.price_source


def test_h100_datasheet_numbers() -> None:
    """H100 SXM: 80 GiB, 3.35 TB/s, 989 dense BF16 TFLOPS (NVIDIA datasheet)."""
    d = get_device("h100")
    assert d.name == "h100-sxm" and d.memory_gib == 80 and d.memory_bw_gb_s == 3350
    assert d.peak_flops("bf16") == pytest.approx(989.4e12)


def test_unified_memory_keeps_a_share_for_the_os() -> None:
    """Apple devices expose only part of their RAM to the GPU."""
    d = get_device("m3-max-128gb")
    assert d.usable_memory_bytes == pytest.approx(128 * 2**30 * 0.75)


def test_user_device_file(tmp_path: Path) -> None:
    """A user's own device YAML loads with the same schema."""
    f = tmp_path / "mybox.yaml"
    f.write_text("kind: workstation-gpu\nmemory_gib: 48\nmemory_bw_gb_s: 960\npeak_tflops: {bf16: 300}\n"
                 "peak_power_w: 300\nsource: my measurement\n")
    d = load_device_file(f)
    assert d.name == "mybox" and d.memory_gib == 48


def test_user_device_file_names_bad_field(tmp_path: Path) -> None:
    """A device file with a wrong field says which."""
    f = tmp_path / "bad.yaml"
    f.write_text("kind: gpu\nmemory_gib: 48\nmemory_bw_gb_s: 960\npeak_tflops: {bf16: 300}\n"
                 "peak_power_w: 1\nsource: x\n")
    with pytest.raises(InputError, match="kind"):
        load_device_file(f)


def test_formats_required_by_the_design_exist() -> None:
    """Weights: 16-bit, fp8, int8, int4 AWQ/GPTQ, GGUF k-quants, nf4, ternary; KV: bf16..int2."""
    w = weight_format_catalog()
    for name in ["bf16", "fp16", "fp8", "int8", "int4-awq", "int4-gptq", "nf4", "ternary-1.58", "gguf-q8_0",
                 "gguf-q6_k", "gguf-q5_k_m", "gguf-q4_k_m", "gguf-q4_0", "gguf-q3_k_m", "gguf-q2_k"]:
        assert name in w
    assert set(kv_format_catalog()) >= {"bf16", "fp8", "int8", "int4", "int2"}


def test_awq_bits_include_group_scales() -> None:
    """INT4 group-128 with fp16 scale and 4-bit zero: 4 + 20/128 bits."""
    assert get_weight_format("awq").bits_per_weight == pytest.approx(4 + 20 / 128, abs=1e-3)


def test_quality_is_data_or_unknown() -> None:
    """Every format's quality effect names its source, or is None (unknown), never a bare number."""
    for f in [*weight_format_catalog().values(), *kv_format_catalog().values()]:
        assert f.quality is None or f.quality.source


def test_gguf_q4_k_m_quality_from_llamacpp_scoreboard() -> None:
    """Q4_K_M on Llama-3-8B: PPL 6.2331 -> 6.4071, +2.79% (llama.cpp perplexity README)."""
    assert get_weight_format("q4_k_m").quality_loss_pct() == pytest.approx(2.79, abs=0.01)


def test_unknown_kv_format_is_named() -> None:
    """An unknown KV format suggests the known ones."""
    with pytest.raises(InputError, match="KV-cache format"):
        get_kv_format("fp7")
