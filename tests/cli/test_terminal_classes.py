"""Online and offline classes from the command line, as a person runs them: in a pseudo-terminal, and every
bad class option one clear line with exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.conftest import in_terminal, piped
from tests.cli.test_terminal import assert_ok

MIX = ("--workload", "chat:rate=4", "--workload", "batch:count=600,deadline=5m")


def test_simulate_a_mix_shows_each_class_and_its_deadline(tmp_path: Path) -> None:
    s = in_terminal(tmp_path, "simulate", "llama-3.1-8b", *MIX, "--slo", "ttft_p90=1s,tpot_p90=50ms",
                    "--offline-budget", "0.03", columns=100)
    text = " ".join(assert_ok(s.text, s.exit_code).split())
    assert "by workload class" in text and "chat" in text and "offline" in text
    assert "SLO batch done within 5m: measured" in text and "report:" in text


def test_simulate_a_minimum_throughput_in_a_terminal(tmp_path: Path) -> None:
    s = in_terminal(tmp_path, "simulate", "llama-3.1-8b", "--workload", "chat:rate=4,duration=300", "--workload",
                    "batch:count=500,throughput=3000", columns=100)
    text = " ".join(assert_ok(s.text, s.exit_code).split())
    assert "SLO batch done within 58.0s (at least 3,000 tokens/s): measured" in text


def test_simulate_a_mix_as_json_names_the_classes(tmp_path: Path) -> None:
    r = piped(tmp_path, "simulate", "llama-3.1-8b", *MIX, "--json", "--no-report")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert [c["name"] for c in doc["classes"]] == ["chat", "batch"] and doc["classes"][1]["deadline_met"]
    assert doc["workload"]["classes"] == "chat + batch"


def test_plan_a_mix_shows_both_fleets_and_writes_priority_flags(tmp_path: Path) -> None:
    s = in_terminal(tmp_path, "plan", "llama-3.1-8b", *MIX, "--slo", "ttft_p90=1s,tpot_p90=50ms",
                    "--devices", "h100-sxm,l4", "--out", "plans", columns=120)
    text = " ".join(assert_ok(s.text, s.exit_code).split())
    assert "served together: $" in text and "on separate fleets: online $" in text and "together saves" in text
    launch = next((tmp_path / "plans").glob("plan-*/deploy/launch.sh")).read_text()
    assert "--scheduling-policy priority" in launch


@pytest.mark.parametrize(("args", "needle"), [
    (("simulate", "--workload", "batch:count=5,deadline=soon"), "deadline=soon is not a duration"),
    (("simulate", "--workload", "batch:count=5,deadline=-1h"), "deadline must be positive"),
    (("simulate", "--workload", "chat:speed=2"), "unknown option 'speed'"),
    (("simulate", "--workload", "batch:count=5,deadline=1h,throughput=9"), "a deadline or a throughput"),
    (("simulate", "--workload", "chat:rate=2,duration=60,throughput=1e6"), "is above the rate its output tokens"),
    (("simulate", *MIX, "--rate", "3"), "give each its own rate or count"),
    (("simulate", *MIX, "--offline-budget", "-1"), "--offline-budget must be a positive number"),
    (("simulate", *MIX, "--fcfs", "--offline-budget", "0.03"), "needs priority scheduling"),
    (("plan", "--workload", "chat:rate=1", "--workload", "batch:count=50,deadline=1s"),
     "deadline=1s is shorter than its longest request"),
])
def test_a_bad_class_is_one_clear_line(tmp_path: Path, args: tuple[str, ...], needle: str) -> None:
    r = piped(tmp_path, *args)
    assert r.returncode == 2, r.stdout + r.stderr
    lines = r.stderr.strip().splitlines()
    assert needle in lines[-1] and "Traceback" not in r.stderr, r.stderr
    # one error line; a plan may have said what it was doing first (the deadline is checked on the candidates)
    assert [line for line in lines if not line.startswith("planning: ")] == [lines[-1]], r.stderr
