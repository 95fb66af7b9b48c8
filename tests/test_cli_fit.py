"""`inferplan fit`, `models`, `devices`, `formats` end to end through the installed console script."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

CLI = [sys.executable, "-m", "inferplan.cli"]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=60)


def test_fit_with_no_arguments_answers() -> None:
    """The quick-start command works on built-in defaults."""
    r = run("fit")
    assert r.returncode == 0, r.stderr
    assert "llama-3.1-8b" in r.stdout and "decode, batch 1" in r.stdout


def test_fit_json_has_the_documented_keys() -> None:
    """--json carries every key scripts rely on, with consistent values."""
    r = run("fit", "llama-3.1-70b", "h100-sxm", "--weights", "int4-awq", "--context", "32768", "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    for key in ["params_total", "params_active", "weights_bytes", "kv_bytes_per_token", "fits",
                "max_concurrent_sequences", "decode_tokens_per_s_batch1", "prefill_tokens_per_s", "ttft_s"]:
        assert key in d
    assert d["fits"] is True and d["kv_bytes_per_token"] == 327_680
    assert d["decode_tokens_per_s_batch1"] < 3350e9 / d["weights_bytes"]


def test_fit_local_config_all_formats(tmp_path) -> None:
    """A local config.json with --all-formats gives one row per usable format."""
    cfg = {"model_type": "qwen3", "hidden_size": 1024, "intermediate_size": 3072, "num_hidden_layers": 28,
           "num_attention_heads": 16, "num_key_value_heads": 8, "head_dim": 128, "vocab_size": 151936,
           "max_position_embeddings": 40960, "tie_word_embeddings": True}
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    r = run("fit", str(tmp_path / "config.json"), "rtx-4090", "--all-formats", "--json")
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert {row["weights_format"] for row in rows} >= {"bf16", "fp8", "int4-awq", "gguf-q4_k_m"}
    assert all(row["fits"] for row in rows)


def test_fit_that_does_not_fit_says_what_would() -> None:
    """Llama-3.1-70B bf16 on one H100 does not fit; suggestions name a format and a TP degree."""
    r = run("fit", "llama-3.1-70b", "h100-sxm", "--json")
    d = json.loads(r.stdout)
    assert d["fits"] is False
    assert any("--weights" in s for s in d["suggestions"]) and any("--tp" in s for s in d["suggestions"])


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("fit", "llama-3.1-8x", "h100"), "did you mean llama-3.1-8b"),
        (("fit", "llama-3.1-8b", "h1000"), "unknown device"),
        (("fit", "llama-3.1-8b", "h100", "--weights", "q4km"), "gguf-q4_k_m"),
        (("fit", "llama-3.1-8b", "h100", "--tp", "3"), "does not divide"),
        (("fit", "llama-3.1-8b", "h100", "--context", "999999"), "131072"),
        (("fit", "llama-3.1-8b", "h100", "--context", "abc"), "--context"),
        (("fit", "./nope/config.json", "h100"), "no such file"),
        (("fit", "llama-3.1-8b", "h100", "--engine", "tensorrt"), "unknown engine 'tensorrt'"),
        (("fit", "llama-3.1-8b", "h100", "--engine", "trtllm", "--weights", "gguf-q4_k_m"),
         "engine trtllm cannot load gguf-q4_k_m weights; engines that can: llamacpp"),
        (("fit", "llama-3.1-8b", "jetson-orin-nano-8gb", "--engine", "vllm"),
         "engine vllm does not serve on edge-soc devices"),
        (("simulate", "llama-3.1-8b", "--engine", "tgi"), "unknown engine 'tgi'"),
    ],
)
def test_bad_input_is_one_clear_line_and_exit_2(args: tuple[str, ...], needle: str) -> None:
    """Bad input: exit code 2, the reason on stderr, no traceback."""
    r = run(*args)
    assert r.returncode == 2
    assert needle in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("verb", ["models", "devices", "formats", "engines"])
def test_catalog_listings_as_json(verb: str) -> None:
    """Catalog listings print valid JSON with --json."""
    r = run(verb, "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)


def test_a_recorded_fit_is_a_run_in_the_registry(tmp_path) -> None:
    registry = str(tmp_path / "runs.sqlite")
    r = run("fit", "llama-3.1-8b", "l4", "--record", "--registry", registry, "--json")
    assert r.returncode == 0, r.stderr
    fitted = json.loads(r.stdout)
    shown = json.loads(run("runs", "show", fitted["run_id"], "--registry", registry, "--json").stdout)
    assert shown["kind"] == "fit" and shown["summary"]["max_context"] == fitted["max_context"]
    both = run("fit", "--all-formats", "--record", "--registry", registry)
    assert both.returncode == 2 and "--record keeps one fit" in both.stderr  # noqa: PLR2004
