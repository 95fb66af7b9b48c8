"""Ctrl-C in a terminal: exit 130, one line saying what was kept, nothing recorded wrongly; a plan resumes."""

from __future__ import annotations

import sqlite3
import subprocess
import time
from pathlib import Path

import pexpect

from tests.cli.conftest import CLI, default_sigint, environment, interrupt_when, piped, terminal


def test_ctrl_c_during_simulate_exits_130_and_records_nothing(tmp_path: Path) -> None:
    s = interrupt_when(tmp_path, ("simulate", "--rate", "30", "--duration", "6000", "--no-report"), "arrivals",
                       after_s=0.5)
    assert s.exit_code == 130, s.text[-2000:]
    assert "interrupted: the simulation stopped before it finished; nothing was written or recorded" in s.text
    assert "Traceback" not in s.text
    with sqlite3.connect(tmp_path / "runs.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 0
    assert not list((tmp_path / "inferplan-runs").glob("sim-*"))


def _cache_rows(registry: Path) -> dict[str, str]:
    if not registry.exists():
        return {}
    with sqlite3.connect(registry) as db:
        return dict(db.execute("SELECT key, created_utc FROM cache").fetchall())


def test_ctrl_c_during_plan_keeps_finished_capacity_searches_and_the_rerun_reuses_them(tmp_path: Path) -> None:
    """SIGINT once some capacity searches are cached: exit 130 and a note naming the registry; the same
    command then completes, reading (not redoing) what was cached."""
    registry = tmp_path / "runs.sqlite"
    child = terminal(tmp_path, "plan")
    deadline = time.monotonic() + 240
    while not _cache_rows(registry) and time.monotonic() < deadline:
        time.sleep(0.2)
    kept = _cache_rows(registry)
    assert kept, "no capacity search finished within 240 s"
    child.sendintr()
    child.expect(pexpect.EOF)
    child.close()
    text = child.before or ""
    assert child.exitstatus == 130, text[-2000:]
    assert f"cached in {registry}" in " ".join(text.replace("\r", "").split()).replace(" ", "") or \
        "cached in" in text, text[-2000:]
    with sqlite3.connect(registry) as db:
        assert db.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 0  # no half-finished plan recorded
    done = piped(tmp_path, "plan", "--json", timeout=600)
    assert done.returncode == 0, done.stderr
    after = _cache_rows(registry)
    for key, created in kept.items():
        assert after[key] == created  # reused from the interrupted run, not computed again


def test_ctrl_c_with_sigint_from_a_script(tmp_path: Path) -> None:
    """A script sending SIGINT (not a terminal) gets the same exit code and note."""
    proc = subprocess.Popen([*CLI, "simulate", "--rate", "30", "--duration", "6000", "--no-report"], cwd=tmp_path,
                            env=environment(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, preexec_fn=default_sigint)
    time.sleep(4)
    proc.send_signal(2)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted:" in err and "Traceback" not in err

