"""`inferplan simulate` and `inferplan runs` end to end, with a real registry file and real reports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import TRACES

CLI = [sys.executable, "-m", "inferplan.cli"]
KEYS = ["num_requests", "num_finished", "num_rejected", "ttft_s", "tpot_s", "itl_s", "e2e_s",
        "throughput_output_tokens_per_s", "goodput_requests_per_s", "slo_attainment", "cost_per_hour",
        "cost_per_million_output_tokens", "energy_j_per_output_token", "num_preemptions"]


def run(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"INFERPLAN_REGISTRY": str(tmp / "runs.sqlite")}
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=300, cwd=tmp, env=env)


def test_simulate_chat_with_slos_writes_report_and_registry(tmp_path: Path) -> None:
    """The issue's first example, shortened: JSON summary, files on disk, a registry row."""
    r = run(tmp_path, "simulate", "llama-3.1-8b", "--device", "h100-sxm", "--workload", "chat", "--rate", "12",
            "--duration", "60", "--slo", "ttft_p90=1s,tpot_p90=50ms", "--json")
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)
    for key in KEYS:
        assert key in s
    for key in ("ttft_s", "tpot_s", "itl_s", "e2e_s"):
        assert set(s[key]) == {"p50", "p90", "p99", "mean"}
    assert s["num_finished"] + s["num_rejected"] == s["num_requests"]
    assert 0 <= s["slo_attainment"] <= 1 and s["cost_per_hour"] == pytest.approx(2.99)
    out = Path(s["out_dir"])
    if not out.is_absolute():
        out = tmp_path / out
    report = (out / "report.html").read_text()
    assert "Plotly" in report and "<script src=" not in report  # plotly.js inlined: opens offline
    assert (out / "requests.csv").read_text().count("\n") == s["num_requests"] + 1
    assert json.loads((out / "summary.json").read_text())["num_requests"] == s["num_requests"]

    listed = run(tmp_path, "runs", "list", "--json")
    assert json.loads(listed.stdout)[0]["id"] == s["run_id"]
    shown = run(tmp_path, "runs", "show", s["run_id"], "--json")
    assert json.loads(shown.stdout)["summary"]["num_requests"] == s["num_requests"]


def test_runs_compare_prints_deltas(tmp_path: Path) -> None:
    """Two policies on the same workload compare metric by metric."""
    ids = []
    for policy in ("vllm", "sarathi"):
        r = run(tmp_path, "simulate", "llama-3.1-8b", "--device", "l4", "--rate", "2", "--duration", "60",
                "--policy", policy, "--chunk-size", "256", "--json", "--no-report")
        assert r.returncode == 0, r.stderr
        ids.append(json.loads(r.stdout)["run_id"])
    c = run(tmp_path, "runs", "compare", *ids, "--json")
    rows = {m["metric"]: m for m in json.loads(c.stdout)["metrics"]}
    assert rows["ttft_s.p90"]["delta"] == pytest.approx(rows["ttft_s.p90"]["b"] - rows["ttft_s.p90"]["a"])
    table = run(tmp_path, "runs", "compare", *ids)
    assert "ttft_s.p90" in table.stdout


@pytest.mark.skipif(not (TRACES / "azure_llm_2023_conv.csv").exists(), reason="shared Azure traces not present")
def test_simulate_real_azure_trace_on_a_cluster(tmp_path: Path) -> None:
    """Azure conversation trace, 4 replicas of Qwen3-32B at TP2 with least-KV routing."""
    r = run(tmp_path, "simulate", "qwen3-32b", "--device", "a100-80gb", "--tp", "2", "--replicas", "4",
            "--router", "least-kv", "--workload", str(TRACES / "azure_llm_2023_conv.csv"), "--num-requests", "3000",
            "--json", "--no-report")
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)
    assert s["num_requests"] == 3000 and s["num_finished"] == 3000
    assert s["num_replicas"] == 4 and s["cost_per_hour"] == pytest.approx(8 * 1.79)


@pytest.mark.skipif(not (TRACES / "azure_llm_2023_code.csv").exists(), reason="shared Azure traces not present")
def test_simulate_code_trace_with_llamacpp_on_an_edge_device(tmp_path: Path) -> None:
    """The llama.cpp policy on a Mac: slots, and rejections for requests longer than a slot."""
    r = run(tmp_path, "simulate", "llama-3.2-3b", "--device", "m3-max-128gb", "--weights", "gguf-q4_k_m",
            "--policy", "llamacpp", "--parallel", "4", "--ctx-size", "16384",
            "--workload", str(TRACES / "azure_llm_2023_code.csv"), "--num-requests", "300", "--json", "--no-report")
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)
    assert s["num_finished"] + s["num_rejected"] == 300
    assert s["num_finished"] > 250


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("simulate", "--router", "fastest"), "unknown router"),
        (("simulate", "--policy", "tgi"), "unknown policy"),
        (("simulate", "--slo", "ttft<1s"), "cannot read SLO"),
        (("simulate", "llama-3.1-70b", "--device", "l4"), "does not fit"),
        (("simulate", "--workload", "missing.csv"), "no such trace file"),
        (("runs", "show", "nope"), "no run"),
        (("simulate", "llama-3.1-8b", "--tp", "2", "--ep"), "has none"),
    ],
)
def test_bad_input_exits_2_with_a_reason(tmp_path: Path, args: tuple[str, ...], needle: str) -> None:
    """Bad input is one message and exit code 2."""
    r = run(tmp_path, *args)
    assert r.returncode == 2, r.stdout + r.stderr
    assert needle in r.stderr and "Traceback" not in r.stderr


def test_malformed_trace_through_the_cli(tmp_path: Path) -> None:
    """A malformed trace row is named; --skip-bad-rows runs anyway and counts it."""
    f = tmp_path / "t.csv"
    f.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46.6805900,374,44\n"
                 "2023-11-16 18:15:47.0000000,-5,10\n2023-11-16 18:15:48.0000000,100,10\n")
    bad = run(tmp_path, "simulate", "--workload", str(f))
    assert bad.returncode == 2 and "line 3" in bad.stderr and "ContextTokens" in bad.stderr
    ok = run(tmp_path, "simulate", "--workload", str(f), "--skip-bad-rows", "--json", "--no-report")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["workload"]["skipped_rows"] == 1


def test_simulate_moe_with_data_parallel_attention(tmp_path: Path) -> None:
    """DP attention + expert parallelism end to end: every request finishes; KV capacity is one cache per rank."""
    r = run(tmp_path, "simulate", "deepseek-v2-lite", "--device", "h100-sxm", "--tp", "4", "--dp-attention",
            "--workload", "chat", "--rate", "8", "--duration", "30", "--json")
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)
    assert s["num_finished"] == s["num_requests"] > 0 and s["num_rejected"] == 0
    assert s["cost_per_hour"] == pytest.approx(4 * 2.99)
