"""`inferplan plan` end to end: verified plans, launch files engines accept, clear failures, resumable sweeps."""

from __future__ import annotations

import json
import os
import shlex
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from inferplan.specs.catalog import weight_format_catalog
from tests.deploy import engine_args

CLI = [sys.executable, "-m", "inferplan.cli"]


def run(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"INFERPLAN_REGISTRY": str(tmp / "runs.sqlite")}
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=600, cwd=tmp, env=env)


@pytest.fixture(scope="module")
def default_plan(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    tmp = tmp_path_factory.mktemp("plan")
    r = run(tmp, "plan", "--json", "--out", "out")
    assert r.returncode == 0, r.stderr
    return tmp, json.loads(r.stdout)


def test_default_plan_is_verified_and_complete(default_plan: tuple[Path, dict]) -> None:
    """The no-argument plan meets its SLOs in a full simulation and reports fleet, cost and metrics."""
    _, doc = default_plan
    assert doc["verified"] is True
    assert doc["cost_per_hour"] == pytest.approx(sum(p["count"] * p["price_per_replica_hour"] for p in doc["fleet"]))
    assert all(s["met"] for s in doc["predicted"]["slos"])
    for key in ("ttft_s", "tpot_s", "itl_s", "e2e_s", "throughput_output_tokens_per_s", "num_preemptions"):
        assert key in doc["predicted"]
    for pool in doc["fleet"]:
        assert pool["quality_loss_pct"] is not None and pool["quality_loss_pct"] <= 1.0


def test_launch_files_use_engine_spellings_and_parse(default_plan: tuple[Path, dict]) -> None:
    """launch.sh flags are vLLM's; kubernetes.yaml parses; memory settings match the plan's assumption."""
    tmp, doc = default_plan
    launch = Path(doc["artifacts"]["launch.sh"])
    launch = launch if launch.is_absolute() else tmp / launch
    text = launch.read_text()
    assert text.startswith("#!/usr/bin/env bash") and "set -euo pipefail" in text
    cmds = [shlex.split(line)[3:] for line in text.splitlines() if line.startswith("run ") and "vllm serve" in line]
    assert len(cmds) == sum(p["count"] for p in doc["fleet"])
    for argv, pool in zip(cmds, doc["fleet"], strict=False):
        assert argv[:2] == ["vllm", "serve"]
        args = engine_args.parse("vllm", argv[2:])  # vLLM's own parser (rebuilt) accepts every flag and value
        assert args.gpu_memory_utilization == pool["gpu_memory_utilization"]
        assert args.max_num_seqs == pool["max_num_seqs"] and int(args.max_model_len) > 0  # vLLM parses "32k" itself
    k8s = Path(doc["artifacts"]["kubernetes.yaml"])
    objs = list(yaml.safe_load_all((k8s if k8s.is_absolute() else tmp / k8s).read_text()))
    workers = [o for o in objs if o["kind"] == "Deployment"
               and o["metadata"]["labels"].get("app.kubernetes.io/component") == "worker"]
    assert len(workers) == len(doc["fleet"])
    dep = workers[0]
    assert dep["spec"]["replicas"] == doc["fleet"][0]["count"]
    assert dep["spec"]["template"]["spec"]["containers"][0]["command"] == ["vllm", "serve"]


def test_report_written(default_plan: tuple[Path, dict]) -> None:
    tmp, doc = default_plan
    report = Path(doc["artifacts"]["report"])
    html = (report if report.is_absolute() else tmp / report).read_text()
    assert "Chosen fleet" in html and "Pareto front" in html


def test_rerun_reuses_cached_evaluations(tmp_path: Path) -> None:
    """A second run with the same registry repeats no capacity search and gives the same answer."""
    args = ("plan", "--devices", "l4,a10g", "--duration", "120", "--buckets", "2", "--json", "--executor", "serial")
    first = json.loads(run(tmp_path, *args).stdout)
    db = sqlite3.connect(tmp_path / "runs.sqlite")
    cached = db.execute("SELECT COUNT(*) FROM cache").fetchone()[0]
    second = json.loads(run(tmp_path, *args).stdout)
    assert db.execute("SELECT COUNT(*) FROM cache").fetchone()[0] == cached > 0
    assert first["fleet"] == second["fleet"] and first["cost_per_hour"] == second["cost_per_hour"]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("plan", "--slo", "ttft_p90=1ms"), "no configuration meets"),
        (("plan", "llama-3.1-405b", "--devices", "l4", "--max-quality-loss", "0"), "fits none"),
        (("plan", "--devices", "rtx-5090", "--energy-price", "-1"), "--energy-price"),
        (("plan", "--slo", "latency<1"), "cannot read SLO"),
    ],
)
def test_impossible_requests_explain_and_exit_2(tmp_path: Path, args: tuple[str, ...], needle: str) -> None:
    r = run(tmp_path, *args)
    assert r.returncode == 2, r.stdout + r.stderr
    assert needle in r.stderr and "Traceback" not in r.stderr


def test_plan_with_autoscaling(tmp_path: Path) -> None:
    """--autoscale plans replicas per window and compares cost per day with static peak provisioning, both
    simulated."""
    r = run(tmp_path, "plan", "--devices", "l4", "--workload", "diurnal-chat", "--rate", "5", "--autoscale",
            "--window", "5m", "--scale-down-delay", "1m", "--buckets", "1", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    a = doc["autoscale"]
    # a preset with no --duration runs four windows, and a fifth when its last arrival falls just past them
    # (at 5 req/s the last of the preset's arrivals is at 1,211 s)
    assert len(a["replicas_per_window"]) in (4, 5)
    assert a["static_replicas"] == max(a["replicas_per_window"])  # one type, one bucket: peak window's count
    assert doc["fleet"][0]["device"] == "l4"
    assert a["cost_per_day"] <= a["static_cost_per_day"]
    assert {"slo_attainment", "slos_met"} <= set(a["autoscaled"]) and "l4" in a["config"]


def test_bad_window_is_explained(tmp_path: Path) -> None:
    r = run(tmp_path, "plan", "--autoscale", "--window", "soon")
    assert r.returncode == 2 and "--window" in r.stderr


def test_plan_disaggregated_fleet_and_its_manifests(tmp_path: Path) -> None:
    """--disaggregation on plans prefill/decode units, verifies them by simulation, and writes P and D pools."""
    r = run(tmp_path, "plan", "--devices", "h100-sxm", "--workload", "summarize", "--rate", "4", "--duration", "120",
            "--slo", "ttft_p90=1s,tpot_p90=20ms", "--buckets", "1", "--disaggregation", "on", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["disaggregation"] == "disaggregated" and doc["verified"] is True
    pool = doc["fleet"][0]
    assert pool["disaggregated"] and pool["prefill_replicas_per_unit"] >= 1 and pool["decode_replicas_per_unit"] >= 1
    k8s = Path(doc["artifacts"]["kubernetes.yaml"])
    objs = list(yaml.safe_load_all((k8s if k8s.is_absolute() else tmp_path / k8s).read_text()))
    names = [o["metadata"]["name"] for o in objs if o["kind"] == "Deployment"]
    assert any(n.endswith("-prefill") for n in names) and any(n.endswith("-decode") for n in names)
    args = next(o for o in objs if o["kind"] == "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--disaggregation-mode") + 1] == "prefill"  # SGLang servers behind a P/D router
    assert any(o["kind"] == "Deployment"
               and "--pd-disaggregation" in o["spec"]["template"]["spec"]["containers"][0]["args"]
               for o in objs)


def test_plan_auto_compares_both_modes(tmp_path: Path) -> None:
    """--disaggregation auto plans both ways and keeps the cheaper verified fleet."""
    r = run(tmp_path, "plan", "--devices", "h100-sxm", "--workload", "summarize", "--rate", "4", "--duration", "120",
            "--slo", "ttft_p90=1s,tpot_p90=20ms", "--buckets", "1", "--disaggregation", "auto", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    costs, verified = doc["cost_per_hour_by_mode"], doc["verified_by_mode"]
    assert set(costs) == {"aggregated", "disaggregated"}
    best = min((m for m in costs if verified[m]), key=lambda m: costs[m])
    assert doc["disaggregation"] == best and doc["cost_per_hour"] == costs[best]


def test_killed_sweep_resumes_without_repeating_work(tmp_path: Path) -> None:
    """Kill a plan after some capacity searches are cached; the rerun keeps those rows untouched (no repeated
    work) and reaches the same plan as an uninterrupted run."""
    args = ["plan", "--devices", "l4,a10g,l40s", "--duration", "120", "--buckets", "2", "--json",
            "--executor", "serial"]
    env = os.environ | {"INFERPLAN_REGISTRY": str(tmp_path / "runs.sqlite")}
    proc = subprocess.Popen([*CLI, *args], cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    db_path = tmp_path / "runs.sqlite"
    before: list[tuple[str, str]] = []
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if db_path.exists():
            before = sqlite3.connect(db_path).execute("SELECT key, created_utc FROM cache").fetchall()
            if len(before) >= 2:
                break
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert len(before) >= 2, "the sweep should be interrupted part-way"
    time.sleep(1.1)  # created_utc has one-second resolution: a recomputed row would get a new stamp
    resumed = json.loads(run(tmp_path, *args).stdout)
    after = dict(sqlite3.connect(db_path).execute("SELECT key, created_utc FROM cache").fetchall())
    assert all(after[k] == created for k, created in before)
    # one search per simulated configuration and bucket: a device's most cost-efficient configuration, plus on
    # some devices the one whose fleet is as cheap with less quality loss (8 here)
    assert len(after) == resumed["search"]["simulated"] * 2 > len(before)
    fresh_env_dir = tmp_path / "fresh"
    fresh_env_dir.mkdir()
    fresh = json.loads(run(fresh_env_dir, *args).stdout)
    assert resumed["fleet"] == fresh["fleet"] and resumed["cost_per_hour"] == fresh["cost_per_hour"]


def test_plan_for_an_edge_device_writes_llama_server(tmp_path: Path) -> None:
    """A user's own priced edge device (YAML): the plan uses GGUF formats and launches llama-server."""
    box = tmp_path / "macstudio.yaml"
    box.write_text("kind: apple-soc\nmemory_gib: 64\nusable_memory_fraction: 0.75\nmemory_bw_gb_s: 400\n"
                   "peak_tflops: {fp16: 13.6, fp32: 13.6}\nfeatures: [gguf]\npeak_power_w: 90\n"
                   "price_per_hour_usd: 0.5\nprice_date: '2026-11'\nprice_source: our amortised cost\n"
                   "source: Apple M2 Max datasheet\n")
    r = run(tmp_path, "plan", "llama-3.2-1b", "--devices", str(box), "--rate", "0.5", "--duration", "120",
            "--buckets", "1", "--slo", "ttft_p90=5s,tpot_p90=200ms", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["verified"]
    assert "llamacpp" in weight_format_catalog()[doc["fleet"][0]["weights"]].engines
    launch = Path(doc["artifacts"]["launch.sh"])
    text = (launch if launch.is_absolute() else tmp_path / launch).read_text()
    assert "llama-server" in text and "vllm serve" not in text
