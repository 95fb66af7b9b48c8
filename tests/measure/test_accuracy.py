"""`inferplan accuracy`: the replay of carried measurements, the limits it replays them under, its errors."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.resources import files
from pathlib import Path

import numpy as np
import pytest

from inferplan.errors import InputError
from inferplan.measure.accuracy import (
    Case,
    data_file,
    error_groups,
    offline_cases,
    read_rows,
    sharegpt_lengths,
    trtllm_bench_limits,
)
from inferplan.perf.memory import plan_memory
from inferplan.perf.resolve import resolve_deployment


def test_trtllm_bench_limits_follow_the_tools_own_rounding() -> None:
    """tuning.py: requests the KV holds (capped at 4096), tokens for one step of them (capped at 32768),
    batch sizes of 1024 or more rounded up to 256 and token counts of 8192 or more up to 1024."""
    dep = resolve_deployment("llama-3.1-8b", "h100-sxm", weights="fp8", kv="fp8", engine="trtllm",
                             limits={"gpu_memory_utilization": 0.95})
    kv_tokens = plan_memory(dep).kv_capacity_tokens
    limits = trtllm_bench_limits(dep, isl=128, osl=128)
    raw = min(kv_tokens / 256, 4096)
    assert raw >= 1024 and limits["max_num_seqs"] == int(np.ceil(raw / 256) * 256)
    assert limits["max_num_batched_tokens"] == int(np.ceil(min(2 * raw, 32768) / 1024) * 1024)
    assert limits["gpu_memory_utilization"] == 0.95


def test_sharegpt_lengths_are_pruned_like_the_benchmark_clients() -> None:
    prompts, outputs = sharegpt_lengths(5000, seed=3)
    assert prompts.min() >= 4 and outputs.min() >= 4 and prompts.max() <= 1024 and (prompts + outputs).max() <= 2048
    # the 300-prompt sample of sgl-project/sglang issue #1268: 248 input and 205 output tokens a prompt
    assert prompts.mean() == pytest.approx(248, rel=0.15) and outputs.mean() == pytest.approx(205, rel=0.15)


def test_groups_report_the_median_and_the_worst_error() -> None:
    offline = "trtllm-v0.17-offline"
    cases = [Case(offline, "h100-sxm", "trtllm", "throughput", str(i), 100.0, p) for i, p in enumerate((90, 105, 130))]
    (g,) = error_groups(cases + [Case(offline, "h200", "trtllm", "throughput", "x", 100.0, 100.0)])[:1]
    assert (g.count, g.median_abs_pct, g.median_signed_pct, g.max_abs_pct, g.in_fit) == (3, 10.0, 5.0, 30.0, "yes")
    assert error_groups([Case(offline, "h200", "trtllm", "throughput", "x", 100.0, 100.0)])[0].in_fit == "held out"
    assert error_groups([Case("serving-online", "h100-sxm", "vllm", "ttft", "x", 1.0, 1.0)])[0].in_fit == "no"


def test_offline_replay_is_within_the_bar_on_the_common_pairs() -> None:
    """Llama-3.1-8B FP8 on H100 at 128/2048 and 500/2000 (trtllm-bench, TensorRT-LLM v0.17): within 25%."""
    rows = [r for r in read_rows(data_file("trtllm_perf_overview_v0.17_throughput.csv"), ("model",))
            if r["model"] == "LLaMA v3.1 8B" and r["gpu"] == "H100 80GB HBM3" and r["isl"] in ("128", "500")
            and r["osl"] in ("2048", "2000")]
    assert len(rows) == 2
    path = Path(__file__).parent / "_rows.csv"
    try:
        with path.open("w") as f:
            f.write(",".join(rows[0]) + "\n" + "\n".join(",".join(r.values()) for r in rows) + "\n")
        cases = list(offline_cases(path))
    finally:
        path.unlink()
    assert len(cases) == 2 and all(abs(c.error) < 0.25 for c in cases), [(c.label, c.error) for c in cases]


def test_a_measurement_file_missing_a_column_is_one_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "rows.csv"
    bad.write_text("model,gpu\nLLaMA v3.1 8B,L40S\n")
    with pytest.raises(InputError, match=r"rows.csv: missing column\(s\) precision, tp"):
        read_rows(bad, ("model", "gpu", "precision", "tp"))


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "inferplan.cli", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=600, check=False)


def test_accuracy_cli_prints_every_dataset_and_writes_its_report(tmp_path: Path) -> None:
    r = _cli("accuracy", "--json", "--out", str(tmp_path / "runs"), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert {g["dataset"] for g in data["groups"]} == {"trtllm-v0.17-offline", "serving-online", "llamacpp-published"}
    assert {g["device"] for g in data["groups"] if g["dataset"] == "trtllm-v0.17-offline"} == {
        "a100-80gb", "h100-sxm", "h200", "l40s"}
    published = [g for g in data["groups"] if g["dataset"] == "llamacpp-published"]
    assert {g["engine"] for g in published} >= {"llamacpp/CUDA", "llamacpp/Metal", "llamacpp/ROCm", "llamacpp/Vulkan"}
    assert all(g["in_fit"] == "no" for g in published)  # collected to check the fit, never fitted
    assert Path(data["report"]).is_file()


def test_accuracy_cli_with_a_bad_measurements_folder_exits_2(tmp_path: Path) -> None:
    net = tmp_path / "m" / "vidur" / "profiling" / "network" / "h100_dgx"
    net.mkdir(parents=True)
    (net / "all_reduce.csv").write_text("size,ms\n1,2\n")
    r = _cli("accuracy", "--measurements", str(tmp_path / "m"), "--out", str(tmp_path / "runs"), cwd=tmp_path)
    assert r.returncode == 2 and "missing column(s) time_stats.all_reduce.median" in r.stderr
    assert "Traceback" not in r.stderr
    shipped = (files("inferplan.specs") / "catalog" / "residuals.yaml").read_text()
    r = _cli("accuracy", "--residuals", "--out", str(tmp_path / "runs"), cwd=tmp_path)  # it would drop llama.cpp's
    assert r.returncode == 2 and "give --measurements DIR" in r.stderr and "Traceback" not in r.stderr
    assert (files("inferplan.specs") / "catalog" / "residuals.yaml").read_text() == shipped
