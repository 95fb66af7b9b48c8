"""`inferplan profile`, `validate` and `calibrate` end to end on this machine's CPU, through the CLI."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from inferplan.perf.profile import DeviceProfile

CLI = [sys.executable, "-m", "inferplan.cli"]


def run(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"INFERPLAN_REGISTRY": str(tmp / "runs.sqlite"), "INFERPLAN_PROFILE": str(tmp / "local.yaml")}
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=600, cwd=tmp, env=env)


@pytest.fixture(scope="module")
def profiled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("profiled")
    r = run(tmp, "profile", "--quick", "--json")
    assert r.returncode == 0, r.stderr
    return tmp


def test_profile_writes_a_device_other_commands_use(profiled: Path) -> None:
    prof = DeviceProfile.load(profiled / "local.yaml")
    spec = prof.device_spec
    assert spec is not None and spec.name == "local" and spec.kind == "cpu"
    assert spec.peak_tflops["fp32"] > 0 and spec.memory_bw_gb_s > 0
    assert 0 < prof.bandwidth_efficiency <= 1 and 0 < prof.attention_efficiency <= 1
    assert prof.matmul_curve and all(0 < e <= 1.0 for _, e in prof.matmul_curve)
    # a single-row matmul reads the whole weight for little work: far less efficient than a large batch
    assert prof.matmul_curve[0][1] < prof.matmul_curve[-1][1]
    assert {"matmul", "bandwidth", "attention", "overhead"} <= set(yaml.safe_load((profiled / "local.yaml").read_text())
                                                                    ["measurements"])
    r = run(profiled, "fit", "llama-3.2-1b", "local", "--weights", "fp32", "--kv", "fp32", "--json")
    assert r.returncode == 0, r.stderr
    fit = json.loads(r.stdout)
    assert fit["fits"]
    # decode at batch 1 cannot beat reading the weights once at the measured streaming rate
    weights_bytes = 1.236e9 * 4
    assert 1 / fit["decode_tokens_per_s_batch1"] >= weights_bytes / (spec.memory_bw_gb_s * 1e9) * 0.99


def test_local_without_a_profile_is_a_clear_error(tmp_path: Path) -> None:
    r = run(tmp_path, "fit", "llama-3.2-1b", "local")
    assert r.returncode == 2 and "inferplan profile" in r.stderr and "Traceback" not in r.stderr


def test_validate_times_real_steps_and_calibrate_fits_them(profiled: Path) -> None:
    r = run(profiled, "validate", "llama-3.2-1b", "--layers", "1", "--batches", "1,8", "--contexts", "256",
            "--prompts", "16,128", "--json")
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)
    assert s["layers"] == 1 and s["num_points"] == 4
    for p in s["points"]:
        assert p["measured_s"] > 0 and p["predicted_s"] > 0
        # a sanity band, not an accuracy bar: catches unit slips (ms for s, 2 bytes for 4)
        assert 0.2 < p["predicted_s"] / p["measured_s"] < 5
    c = run(profiled, "calibrate", "--from", s["run_id"], "--fit", "compute,overhead", "--out", "cal.yaml", "--json")
    assert c.returncode == 0, c.stderr
    cal = json.loads(c.stdout)
    # least squares on log errors: the objective never rises (the median APE of four points may)
    assert cal["rms_log_error_after"] <= cal["rms_log_error_before"] + 1e-12
    sd = DeviceProfile.load(profiled / "cal.yaml").uncertainty["step_time_log_sd"]
    assert sd >= 0
    # later predictions carry the calibrated spread as a range
    f = run(profiled, "fit", "llama-3.2-1b", "local", "--weights", "fp32", "--kv", "fp32", "--profile", "cal.yaml",
            "--json")
    assert json.loads(f.stdout)["speed_range_pct"] == pytest.approx(100 * (math.exp(sd) - 1))
    sim = run(profiled, "simulate", "llama-3.2-1b", "--device", "local", "--weights", "fp32", "--kv", "fp32",
              "--profile", "cal.yaml", "--workload", "chat", "--num-requests", "3", "--rate", "0.01",
              "--no-report", "--json")
    assert sim.returncode == 0, sim.stderr
    assert json.loads(sim.stdout)["step_time_range_pct"] == pytest.approx(100 * (math.exp(sd) - 1))
