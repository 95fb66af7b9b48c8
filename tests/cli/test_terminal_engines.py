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


def test_swap_space_and_a_kv_budget_in_a_terminal(tmp_path: Path) -> None:
    """The README's serving-technique options where people run them: swapped KV is counted in the summary line,
    a KV budget is named with the deployment, and a budget the catalog cannot read is one line and exit 2."""
    sim = " ".join(assert_ok(*_run(tmp_path, "simulate", "llama-3.1-8b", "--device", "l4", "--workload", "summarize",
                                   "--rate", "0.5", "--duration", "120", "--swap-space", "32",
                                   "--kv-budget", "keydiff:8192", "--no-report")).split())
    assert "KV budget keydiff:8192" in sim and "KV tokens copied via host memory" in sim
    bad = in_terminal(tmp_path, "fit", "llama-3.1-8b", "h100-sxm", "--kv-budget", "keydiff")
    assert bad.exit_code == 2 and "--kv-budget must be METHOD:TOKENS" in bad.text and "Traceback" not in bad.text
