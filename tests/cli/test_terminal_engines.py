"""The engine and accuracy examples of the README in a pseudo-terminal, where people run them."""

from __future__ import annotations

from pathlib import Path

from tests.cli.conftest import in_terminal
from tests.cli.test_terminal import assert_ok


def test_engines_trtllm_simulate_and_accuracy_in_a_terminal(tmp_path: Path) -> None:
    engines = " ".join(assert_ok(*_run(tmp_path, "engines")).split())
    assert all(name in engines for name in ("vllm", "sglang", "trtllm", "llamacpp", "fraction-of-free"))
    sim = " ".join(assert_ok(*_run(tmp_path, "simulate", "llama-3.1-70b", "--device", "h100-sxm", "--tp", "4",
                                   "--engine", "trtllm", "--workload", "chat", "--rate", "8", "--duration", "30",
                                   "--no-report")).split())
    assert "engine trtllm" in sim and "preemptions 0" in sim and "likely ranges (10-90%" in sim
    acc = " ".join(assert_ok(*_run(tmp_path, "accuracy")).split())
    assert "trtllm-v0.17-offline" in acc and "held out" in acc and "report:" in acc
    bad = in_terminal(tmp_path, "simulate", "--engine", "tensorrt")
    assert bad.exit_code == 2 and "unknown engine 'tensorrt'" in bad.text and "Traceback" not in bad.text


def _run(tmp_path: Path, *args: str) -> tuple[str, int | None]:
    s = in_terminal(tmp_path, *args, timeout=600)
    return s.text, s.exit_code
