"""Background jobs in real worker processes: finished ones are recorded, cancelled ones are not, none is lost."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from inferplan import api
from inferplan.ui.jobs import TERMINAL, JobManager

SHORT = {"model": "llama-3.1-8b", "device": "h100-sxm", "workload": "chat", "rate": "2", "duration": "15",
         "slo": "ttft_p90=1s"}


def wait_end(jobs: JobManager, job_id: str, timeout_s: float = 240) -> str:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        state = jobs.get(job_id).state
        if state in TERMINAL:
            return state
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} still {jobs.get(job_id).state} after {timeout_s:g} s")


def count(registry: Path) -> int:
    return api.Registry(registry).search(api.RunQuery())[1]


def test_a_simulation_job_runs_in_a_worker_and_is_recorded(client: TestClient, registry_copy: Path) -> None:
    before = count(registry_copy)
    r = client.post("/simulate", data=SHORT)
    assert r.status_code == 303 and r.headers["location"].startswith("/jobs/")
    job_id = r.headers["location"].rsplit("/", 1)[1]
    jobs: JobManager = client.app.state.bench.jobs  # type: ignore[attr-defined]
    with client.stream("GET", f"/jobs/{job_id}/events") as events:  # what the page listens to
        states = [json.loads(line[6:])["state"] for line in events.iter_lines() if line.startswith("data: ")]
    assert states[-1] == "done" and set(states) <= {"queued", "running", "done"}
    job = jobs.get(job_id).snapshot()
    run = api.Registry(registry_copy).get(job["run_id"])
    assert count(registry_copy) == before + 1 and run.kind == "sim" and run.inputs["duration_s"] == 15  # noqa: PLR2004
    assert (Path(run.out_dir or "") / "digest.json").is_file()
    page = client.get(f"/jobs/{job_id}").text  # a reload after the end shows the outcome
    assert f'href="/runs/{job["run_id"]}"' in page and 'data-state="done"' in page


def test_two_jobs_at_once_both_finish_and_a_third_waits_its_turn(registry_copy: Path, tmp_path: Path) -> None:
    jobs = JobManager(registry_copy, tmp_path / "out", max_running=2)
    cfgs = [api.SimulationConfig(workload="chat", rate=2, duration_s=10, seed=k) for k in range(3)]
    started = [jobs.submit("sim", c, f"sim {k}") for k, c in enumerate(cfgs)]
    time.sleep(0.5)
    assert sum(jobs.get(j.id).state == "queued" for j in started) >= 1  # only two workers at a time
    assert [wait_end(jobs, j.id) for j in started] == ["done"] * 3
    ids = {jobs.get(j.id).run_id for j in started}
    assert len(ids) == 3 and all(api.Registry(registry_copy).get(i or "").kind == "sim" for i in ids)  # noqa: PLR2004


def test_a_cancelled_job_stops_its_worker_and_records_nothing(registry_copy: Path, tmp_path: Path) -> None:
    jobs = JobManager(registry_copy, tmp_path / "out", max_running=1)
    before = count(registry_copy)
    long = jobs.submit("sim", api.SimulationConfig(workload="chat", rate=40, duration_s=3600), "long")
    waiting = jobs.submit("sim", api.SimulationConfig(workload="chat", rate=2, duration_s=10), "waiting")
    deadline = time.time() + 60
    while jobs.get(long.id).fraction is None and time.time() < deadline:  # under way, not just started
        time.sleep(0.1)
    jobs.cancel(waiting.id)
    jobs.cancel(long.id)
    assert wait_end(jobs, long.id) == "cancelled" and wait_end(jobs, waiting.id) == "cancelled"
    process = jobs.get(long.id).process
    assert process is not None and not process.is_alive()
    assert "nothing was recorded" in jobs.get(long.id).message
    assert count(registry_copy) == before and not any((tmp_path / "out").glob("sim-*"))


def test_a_job_that_fails_in_its_worker_says_why(registry_copy: Path, tmp_path: Path) -> None:
    jobs = JobManager(registry_copy, tmp_path / "out")
    job = jobs.submit("sim", api.SimulationConfig(workload="chat", rate=2, duration_s=10, policy="no-such"), "bad")
    assert wait_end(jobs, job.id) == "failed"
    assert "no-such" in (jobs.get(job.id).error or "")
    with pytest.raises(api.InputError, match="no job 'nope'"):
        jobs.get("nope")


def test_an_unknown_job_is_a_404_page(client: TestClient) -> None:
    r = client.get("/jobs/0123456789")
    assert r.status_code == 400 or r.status_code == 404  # noqa: PLR1714
    assert "no job" in r.text


def test_what_if_replans_and_shows_the_new_plan_beside_the_old(client: TestClient, registry_copy: Path) -> None:
    old = api.Registry(registry_copy).get(api.Registry(registry_copy).search(api.RunQuery(kind="plan"))[0][0].id)
    form = {"beside": old.id, "model": "llama-3.1-8b", "workload": "chat", "duration": "30", "seed": "0",
            "objective": "cost", "executor": "serial", "rate": "4", "slo": old.inputs["slo"]}
    r = client.post("/plan", data=form | {"devices": ["l4", "a10g"]})
    assert r.status_code == 303
    jobs: JobManager = client.app.state.bench.jobs  # type: ignore[attr-defined]
    job_id = r.headers["location"].rsplit("/", 1)[1]
    assert wait_end(jobs, job_id) == "done", jobs.get(job_id).error
    new = jobs.get(job_id).snapshot()
    page = client.get(f"/runs/{new['run_id']}", params={"beside": new["beside"]}).text
    assert "What if: this run beside" in page and f"plan {old.id}" in page and f"plan {new['run_id']}" in page
    assert "<td>rate</td><td>2</td><td>4</td>" in page.replace(".0<", "<")  # the change, in the diff


def test_a_later_server_still_lists_every_job(registry_copy: Path, tmp_path: Path) -> None:
    history = tmp_path / "ui-jobs"
    jobs = JobManager(registry_copy, tmp_path / "out", history=history)
    done = jobs.submit("sim", api.SimulationConfig(workload="chat", rate=2, duration_s=10), "short")
    long = jobs.submit("sim", api.SimulationConfig(workload="chat", rate=40, duration_s=3600), "long")
    assert wait_end(jobs, done.id) == "done"
    assert json.loads((history / f"{long.id}.json").read_text())["state"] in ("queued", "running")
    later = JobManager(registry_copy, tmp_path / "out", history=history)  # what a restart reads
    assert later.get(done.id).state == "done" and later.get(done.id).run_id == jobs.get(done.id).run_id
    assert later.get(long.id).state == "cancelled" and "stopped before it finished" in later.get(long.id).message
    jobs.shutdown()
    assert jobs.get(long.id).state == "cancelled"
