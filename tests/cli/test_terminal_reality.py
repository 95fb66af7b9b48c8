"""The reality loop's README commands in a pseudo-terminal: bench (against a server on loopback that
misbehaves on purpose), compare, calibrate, profile and validate; Ctrl-C during a bench keeps its records."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pexpect
import pytest

from tests.cli.conftest import in_terminal, terminal
from tests.cli.test_terminal import assert_ok, clean
from tests.measure.misbehaving_server import misbehaving_server, write_trace


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with misbehaving_server(stall_s=30.0) as url:
        yield url


def test_bench_then_simulate_its_trace_then_compare(server: str, tmp_path: Path) -> None:
    trace = write_trace(tmp_path / "t.csv", ["ok"] * 6 + ["cut:3", "http:503"])
    s = in_terminal(tmp_path, "bench", server, "--workload", str(trace), "--timeout", "5")
    text = assert_ok(s.text, s.exit_code)
    flat = " ".join(text.split())
    assert "failed:" in flat and "truncated: 1" in flat and "HTTP 503: 1" in flat, flat
    bench_id = re.search(r"run (bench-\d{8}-\d{6}-[0-9a-f]{6})", flat)
    assert bench_id
    folder = next((tmp_path / "inferplan-runs").glob("bench-*"))
    sim = in_terminal(tmp_path, "simulate", "llama-3.2-1b", "--device", "l4", "--workload",
                      str(folder / "requests.csv"))
    sim_id = re.search(r"run (sim-\d{8}-\d{6}-[0-9a-f]{6})", " ".join(assert_ok(sim.text, sim.exit_code).split()))
    assert sim_id
    compared = in_terminal(tmp_path, "compare", bench_id.group(1), sim_id.group(1))
    assert "median absolute error" in assert_ok(compared.text, compared.exit_code)
    shown = in_terminal(tmp_path, "runs", "show", bench_id.group(1))
    assert "TTFT" in assert_ok(shown.text, shown.exit_code)


def test_ctrl_c_during_bench_exits_130_and_keeps_what_finished(server: str, tmp_path: Path) -> None:
    trace = write_trace(tmp_path / "t.csv", ["ok"] * 4 + ["stall:2"] * 2, gap_s=0.05)
    child = terminal(tmp_path, "bench", server, "--workload", str(trace), "--timeout", "60", timeout=120)
    time.sleep(4)  # the four good requests finish; the stalled ones wait
    child.sendintr()
    child.expect(pexpect.EOF)
    child.close()
    text = clean(child.before or "")
    assert child.exitstatus == 130, text[-2000:]
    assert "interrupted: kept 4 finished of 6 requests" in " ".join(text.split()), text[-2000:]
    folder = next((tmp_path / "inferplan-runs").glob("bench-*"))
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["num_finished"] == 4 and summary["num_requests"] == 6


def test_profile_and_validate_in_a_terminal(tmp_path: Path) -> None:
    """`profile --quick` writes a profile; `validate` times a two-layer model against it."""
    profile = tmp_path / "local.yaml"
    s = in_terminal(tmp_path, "profile", "--quick", "--out", str(profile), timeout=300)
    assert "profile:" in assert_ok(s.text, s.exit_code) and profile.exists()
    v = in_terminal(tmp_path, "validate", "llama-3.2-1b", "--profile", str(profile), "--layers", "2",
                    "--batches", "1,4", "--contexts", "128", "--prompts", "32,128", timeout=300)
    text = " ".join(assert_ok(v.text, v.exit_code).split())
    assert "median absolute percentage error" in text
    run_id = re.search(r"run (validate-\d{8}-\d{6}-[0-9a-f]{6})", text)
    assert run_id, text
    c = in_terminal(tmp_path, "calibrate", "--from", run_id.group(1), "--profile", str(profile), "--out",
                    str(tmp_path / "calibrated.yaml"))
    assert "median absolute error" in assert_ok(c.text, c.exit_code) and (tmp_path / "calibrated.yaml").exists()
