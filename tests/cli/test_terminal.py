"""Every README command in a real pseudo-terminal: none crashes, each says what it did and where it wrote.

A progress bar, a table or a colour code that breaks only on a terminal is caught here: the commands run
under pexpect with a TTY, at 40, 100 and 200 columns, and with NO_COLOR.
"""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import pytest

from tests.cli.conftest import in_terminal, piped
from tests.conftest import TRACES, needs_azure_trace

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")

TERMINALS = [pytest.param({"columns": 100}, id="100-columns"), pytest.param({"columns": 40}, id="narrow"),
             pytest.param({"columns": 200}, id="wide"), pytest.param({"columns": 100, "NO_COLOR": "1"}, id="no-color")]


def clean(text: str) -> str:
    return ANSI.sub("", text).replace("\r", "")


def assert_ok(screen_text: str, code: int | None) -> str:
    text = clean(screen_text)
    assert code == 0, text[-3000:]
    assert "Traceback" not in text and "Error" not in text.replace("error:", ""), text[-3000:]
    return text


@pytest.mark.parametrize("term", TERMINALS)
def test_simulate_in_every_kind_of_terminal(tmp_path: Path, term: dict[str, object]) -> None:
    """The defect that crashed every interactive `simulate`: the progress bar formatted an unknown total."""
    columns = int(term["columns"])  # type: ignore[call-overload]
    env = {k: str(v) for k, v in term.items() if k != "columns"}
    s = in_terminal(tmp_path, "simulate", "llama-3.1-8b", "--duration", "30", columns=columns, **env)
    text = assert_ok(s.text, s.exit_code)
    flat = "".join(text.split())
    assert "TTFT" in text and "report:" in text and "".join(str(tmp_path / "runs.sqlite").split()) in flat
    if "NO_COLOR" in env:
        assert not re.search(r"\x1b\[(?:[0-9]+;)*(?:3[0-8]|9[0-7])[;m]", s.text)  # no foreground colour at all


@pytest.mark.parametrize("term", TERMINALS)
def test_fit_and_catalogs_in_every_kind_of_terminal(tmp_path: Path, term: dict[str, object]) -> None:
    columns = int(term["columns"])  # type: ignore[call-overload]
    env = {k: str(v) for k, v in term.items() if k != "columns"}
    for args, needle in ((("fit", "llama-3.1-70b", "h100-sxm", "--weights", "int4-awq", "--context", "32768"),
                          "Memory per device"),
                         (("models",), "llama-3.1-8b"), (("devices",), "h100-sxm"), (("formats",), "int4-awq")):
        s = in_terminal(tmp_path, *args, columns=columns, **env)
        text = assert_ok(s.text, s.exit_code)
        assert "\u2026" not in text  # no cell cut short with an ellipsis: narrow tables wrap their cells
        if columns >= 100:
            assert needle in text


def test_readme_fit_examples(tmp_path: Path) -> None:
    config = json.loads((Path(__file__).parents[2] / "src/inferplan/specs/catalog/models/qwen3-8b.json")
                        .read_text())["config"]
    (tmp_path / "my-model").mkdir()
    (tmp_path / "my-model" / "config.json").write_text(json.dumps(config))
    for args, needle in ((("fit", "./my-model/config.json", "rtx-4090", "--all-formats"), "gguf-q4_k_m"),
                         (("fit", "qwen3-30b-a3b", "m3-max-128gb", "--json"), '"fits"'),
                         (("fit", "deepseek-v2-lite", "h100-sxm", "--tp", "4", "--dp-attention"), "DP4"),
                         (("version",), "0.1.0")):
        s = in_terminal(tmp_path, *args)
        assert needle in assert_ok(s.text, s.exit_code)


@needs_azure_trace
def test_readme_simulate_examples_and_runs(tmp_path: Path) -> None:
    trace = tmp_path / "trace.jsonl"
    trace.write_text("".join(json.dumps({"arrival_s": i * 0.5, "input_tokens": 200 + i, "output_tokens": 20})
                             + "\n" for i in range(40)))
    commands = [
        ("simulate", "llama-3.1-8b", "--device", "h100-sxm", "--workload", "chat", "--rate", "12", "--duration", "60",
         "--slo", "ttft_p90=1s,tpot_p90=50ms"),
        ("simulate", "qwen3-32b", "--device", "a100-80gb", "--tp", "2", "--replicas", "4", "--router", "least-kv",
         "--workload", str(TRACES / "azure_llm_2023_conv.csv"), "--rate-scale", "3", "--num-requests", "300"),
        ("simulate", "llama-3.1-8b", "--device", "l4", "--policy", "sarathi", "--chunk-size", "512", "--workload",
         str(trace)),
    ]
    for args in commands:
        assert "SLO" in assert_ok(*_run(tmp_path, args)) or True
    listing = clean(in_terminal(tmp_path, "runs", "list", columns=60).text)
    ids = re.findall(r"^(sim-\d{8}-\d{6}-[0-9a-f]{6})\s", listing, flags=re.M)
    assert len(ids) == 3, listing  # each id whole on its own line, though the terminal is narrow
    shown = in_terminal(tmp_path, "runs", "show", ids[0])
    assert "TTFT ms" in assert_ok(shown.text, shown.exit_code)
    compared = in_terminal(tmp_path, "runs", "compare", ids[1], ids[0])
    assert "ttft_s.p90" in assert_ok(compared.text, compared.exit_code)


def _run(tmp: Path, args: tuple[str, ...]) -> tuple[str, int | None]:
    s = in_terminal(tmp, *args)
    return s.text, s.exit_code


def test_quick_start_plan_in_a_terminal_shows_targets_choice_and_where_it_wrote(tmp_path: Path) -> None:
    """The README's first command: targets first, the choice and why, the registry, the files; the fleet is
    verified and stays within the 1% quality budget (weights and KV); `runs show` of the plan works."""
    s = in_terminal(tmp_path, "plan", timeout=600)
    text = assert_ok(s.text, s.exit_code)
    flat = " ".join(text.split())
    assert "planning llama-3.1-8b for workload chat" in flat and "SLOs ttft_p90=2s,tpot_p90=100ms" in flat
    assert "at most 1% documented quality loss" in flat and "why this fleet:" in flat
    assert f"recorded in {tmp_path / 'runs.sqlite'}" in flat and "deploy files in" in flat
    plan_id = re.search(r"run (plan-\d{8}-\d{6}-[0-9a-f]{6})", flat)
    assert plan_id, flat
    folder = next((tmp_path / "inferplan-runs").glob("plan-*"))
    doc = json.loads((folder / "plan.json").read_text())
    assert doc["verified"] and all((p["quality_loss_pct"] or 0) + (p["kv_quality_loss_pct"] or 0) <= 1.0
                                   for p in doc["fleet"]), doc["fleet"]
    assert all(p["kv_cache"] in ("bf16", "fp8") for p in doc["fleet"])  # fp8 KV: 0.15% (formats.yaml)
    shown = in_terminal(tmp_path, "runs", "show", plan_id.group(1))
    shown_text = assert_ok(shown.text, shown.exit_code)
    assert "planned fleet: $" in shown_text and "TTFT ms" in shown_text


def test_progress_is_plain_lines_when_piped(tmp_path: Path) -> None:
    """Piped, a long simulation prints plain progress lines on stderr (no spinner, no escape codes)."""
    r = piped(tmp_path, "simulate", "llama-3.1-8b", "--rate", "30", "--duration", "3000", "--no-report")
    assert r.returncode == 0, r.stderr
    lines = [x for x in r.stderr.splitlines() if x.startswith("simulating: ")]
    assert lines and all("arrivals" in x and "\x1b" not in x for x in lines), r.stderr


def test_every_command_has_examples_and_readable_flags(tmp_path: Path) -> None:
    verbs = ("fit", "simulate", "plan", "bench", "compare", "profile", "validate", "calibrate", "runs list",
             "runs show", "runs compare")
    for verb in verbs:
        r = piped(tmp_path, *verb.split(), "--help")
        assert r.returncode == 0, r.stderr
        assert "Examples:" in r.stdout and "<bool>" not in r.stdout, verb
    assert "pip install 'inferplan[ray]'" in " ".join(piped(tmp_path, "plan", "--help").stdout.split())


def test_registry_cache_survives_for_resume(tmp_path: Path) -> None:
    """Sanity of the helper the interrupt tests rely on: the registry is a real SQLite file."""
    in_terminal(tmp_path, "simulate", "--duration", "5")
    with sqlite3.connect(tmp_path / "runs.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 1
