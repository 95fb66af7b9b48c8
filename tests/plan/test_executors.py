"""Executors: the same answers in-process, in a process pool, and on a real local Ray instance."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from inferplan.plan.executors import run_all

CLI = [sys.executable, "-m", "inferplan.cli"]


def square(x: int) -> int:
    return x * x


def test_local_pool_and_serial_agree() -> None:
    assert run_all(square, range(5), executor="local", workers=2) == run_all(square, range(5), executor="serial")


def test_plan_on_a_real_local_ray_instance(tmp_path: Path) -> None:
    """`inferplan plan --executor ray` starts a local Ray instance and gives the same plan as the process pool."""
    env = os.environ | {"INFERPLAN_REGISTRY": str(tmp_path / "runs.sqlite"), "RAY_ADDRESS": ""}
    args = ["plan", "--devices", "l4,a10g", "--duration", "120", "--buckets", "2", "--json"]
    ray = subprocess.run([*CLI, *args, "--executor", "ray"], capture_output=True, text=True, timeout=600,
                         cwd=tmp_path, env=env)
    assert ray.returncode == 0, ray.stderr
    env["INFERPLAN_REGISTRY"] = str(tmp_path / "other.sqlite")  # no shared cache: the pool recomputes
    pool = subprocess.run([*CLI, *args, "--executor", "local"], capture_output=True, text=True, timeout=600,
                          cwd=tmp_path, env=env)
    a, b = json.loads(ray.stdout), json.loads(pool.stdout)
    assert a["fleet"] == b["fleet"] and a["cost_per_hour"] == b["cost_per_hour"]
