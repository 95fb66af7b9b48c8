"""Run the CLI as a person does: in a pseudo-terminal (pexpect), with a registry and folder of the test's own."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pexpect
import pytest

CLI = [sys.executable, "-m", "inferplan.cli"]


@dataclass
class Screen:
    """What a terminal showed, and how the command ended."""

    text: str
    exit_code: int | None
    signal: int | None


def environment(tmp: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "COLUMNS", "LINES", "FORCE_COLOR")}
    return env | {"INFERPLAN_REGISTRY": str(tmp / "runs.sqlite"), "TERM": "xterm-256color"} | extra


def default_sigint() -> None:
    """In the child: Ctrl-C as a person's shell delivers it. A job started in the background (CI's, or
    ``cmd &``) runs with SIGINT ignored, which its children inherit, and Python then never raises
    KeyboardInterrupt."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def terminal(tmp: Path, *args: str, columns: int = 120, timeout: float = 300, **env: str) -> pexpect.spawn:
    """``inferplan ARGS`` started in a pseudo-terminal of ``columns`` columns, with its own registry."""
    return pexpect.spawn(CLI[0], [*CLI[1:], *args], cwd=str(tmp), env=environment(tmp, **env), encoding="utf-8",
                         codec_errors="replace", dimensions=(40, columns), timeout=timeout,
                         preexec_fn=default_sigint)


def in_terminal(tmp: Path, *args: str, columns: int = 100, timeout: float = 300, **env: str) -> Screen:
    """Run ``inferplan ARGS`` in a pseudo-terminal of ``columns`` columns and return everything it showed."""
    child = terminal(tmp, *args, columns=columns, timeout=timeout, **env)
    child.expect(pexpect.EOF)
    child.close()
    return Screen(child.before or "", child.exitstatus, child.signalstatus)


def interrupt_when(tmp: Path, args: tuple[str, ...], ready: str | None = None, *, after_s: float = 0.0,
                   timeout: float = 120) -> Screen:
    """Start ``inferplan ARGS`` in a terminal, press Ctrl-C once ``ready`` was shown (and ``after_s`` passed)."""
    child = terminal(tmp, *args, timeout=timeout)
    seen = ""
    if ready:
        child.expect(ready)
        seen = (child.before or "") + str(child.after)
    time.sleep(after_s)
    child.sendintr()
    child.expect(pexpect.EOF)
    child.close()
    return Screen(seen + (child.before or ""), child.exitstatus, child.signalstatus)


def piped(tmp: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout, cwd=tmp,
                          env=environment(tmp))


@pytest.fixture
def terminal_dir(tmp_path: Path) -> Path:
    return tmp_path
