"""Executors: the same answers in-process, in a process pool, and on a real local Ray instance."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest

from inferplan.plan import search
from inferplan.plan.executors import run_all
from inferplan.plan.search import PlanRequest, plan
from inferplan.store import Registry

CLI = [sys.executable, "-m", "inferplan.cli"]


def square(x: int) -> int:
    return x * x


def test_local_pool_and_serial_agree() -> None:
    assert run_all(square, range(5), executor="local", workers=2) == run_all(square, range(5), executor="serial")


def started(path_and_x: tuple[str, int]) -> int:
    """Note that the job started (one line, appended), then work a while so the pool's two workers stay busy."""
    path, x = path_and_x
    with open(path, "a") as f:
        f.write(f"{x}\n")
    time.sleep(0.3)
    return -x


def test_the_largest_jobs_start_first_results_keep_their_order_and_reach_the_caller(tmp_path: Path) -> None:
    log = str(tmp_path / "started.txt")
    jobs = [(log, x) for x in (3, 9, 1, 7, 5)]
    seen: list[tuple[int, int, int]] = []
    out = run_all(started, jobs, executor="local", workers=2, size=lambda job: job[1],
                  on_result=lambda i, r: seen.append((i, r, os.getpid())))
    assert out == [-3, -9, -1, -7, -5]
    # each result reached this process as its job finished (here the caller records it: workers need no registry)
    assert sorted(seen) == [(i, -x, os.getpid()) for i, (_, x) in enumerate(jobs)]
    order = [int(line) for line in Path(log).read_text().split()]
    assert sorted(order[:2]) == [7, 9] and sorted(order[2:4]) == [3, 5] and order[4] == 1


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


def test_a_rerun_dispatches_no_search_the_registry_holds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The planner process owns the capacity cache: a rerun on the same registry says every search was kept,
    runs none (the executor is never handed a job) and reaches the same fleet."""
    req = PlanRequest(devices=("l4", "a10g"), duration_s=120, buckets=2, executor="serial")
    registry = Registry(tmp_path / "runs.sqlite")
    first_notes: list[str] = []
    first = plan(req, registry=registry, progress=first_notes.append)
    searches = len(first.survivors) * len(first.buckets)
    handed: list[int] = []

    def counting(fn: Callable[[Any], Any], items: Iterable[Any], **kw: Any) -> list[Any]:
        jobs = list(items)
        handed.append(len(jobs))
        return run_all(fn, jobs, **kw)

    notes: list[str] = []
    monkeypatch.setattr(search, "run_all", counting)
    again = plan(req, registry=registry, progress=notes.append)
    assert not any("from the registry" in n for n in first_notes)
    assert f"aggregated: capacity of {len(first.survivors)} configurations on 2 buckets, {searches} of {searches} " \
           "from the registry" in notes
    assert handed[0] == 0  # the capacity searches (verification follows)
    assert again.fleet.replicas == first.fleet.replicas and again.summary == first.summary
