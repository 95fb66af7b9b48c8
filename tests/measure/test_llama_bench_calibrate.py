"""The reality loop for llama.cpp on this machine: a real llama-bench run on a GGUF written here feeds
`inferplan calibrate`, and the calibrated profile predicts the same runs better than the measured one."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from inferplan.measure.llama_server import llama_server_binary
from inferplan.measure.tiny_gguf import tiny_vocab, write_tiny_gguf
from tests.measure.test_llama_server import NOT_INSTALLED

CLI = [sys.executable, "-m", "inferplan.cli"]
SHAPE = {"layers": 4, "hidden": 512, "heads": 8, "kv_heads": 4, "intermediate": 1408, "context": 4096}


def _config(path: Path) -> Path:
    """The same shapes as a Hugging Face config.json, which is how `--model` names a model outside the catalog."""
    path.write_text(json.dumps({
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": SHAPE["hidden"],
        "intermediate_size": SHAPE["intermediate"], "num_hidden_layers": SHAPE["layers"],
        "num_attention_heads": SHAPE["heads"], "num_key_value_heads": SHAPE["kv_heads"],
        "vocab_size": len(tiny_vocab()), "max_position_embeddings": SHAPE["context"], "rms_norm_eps": 1e-5,
        "tie_word_embeddings": False, "torch_dtype": "float16"}))
    return path


def test_llama_bench_on_this_cpu_calibrates_the_local_profile(tmp_path: Path) -> None:
    binary = llama_server_binary()
    if binary is None:
        pytest.skip(NOT_INSTALLED)
    model = write_tiny_gguf(tmp_path / "m.gguf", **SHAPE)
    bench = subprocess.run([str(binary.parent / "llama-bench"), "-m", str(model), "-p", "64,128,256,512",
                            "-n", "16,64", "-r", "2", "-t", "2", "-o", "json"], capture_output=True, text=True,
                           timeout=120, check=True)
    results = tmp_path / "llama-bench.json"
    results.write_text(bench.stdout)
    assert {(r["n_prompt"], r["n_gen"]) for r in json.loads(bench.stdout)} == {
        (64, 0), (128, 0), (256, 0), (512, 0), (0, 16), (0, 64)}
    prof = tmp_path / "local.yaml"
    r = subprocess.run([*CLI, "profile", "--quick", "--out", str(prof)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([*CLI, "calibrate", "--llama-bench", str(results), "--model", str(_config(tmp_path / "c.json")),
                        "--weights", "fp16", "--device", "local", "--profile", str(prof),
                        "--out", str(tmp_path / "calibrated.yaml")], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    before, after = map(float, re.search(r"([\d.]+)% before, ([\d.]+)% after", r.stdout).groups())  # type: ignore[union-attr]
    assert after < before and (tmp_path / "calibrated.yaml").is_file()
