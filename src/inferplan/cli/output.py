"""What every CLI verb prints through: a console for people, stderr for progress, JSON for scripts.

Progress goes to stderr, so ``--json`` output on stdout stays clean: a live bar when
stderr is a terminal, a plain line every few seconds when it is piped or logged.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any

from rich.console import Console

from inferplan.api import InputError

out = Console(width=None if sys.stdout.isatty() else 120, highlight=False)  # 120 columns when piped
err = Console(stderr=True, highlight=False)

EXIT_INTERRUPTED = 130


def print_table(table: Any) -> None:
    """Print a rich Table whose cells wrap instead of being cut: on a narrow terminal a number split over
    two lines is still that number, while an ellipsis ("1,49...") would make it another."""
    for column in table.columns:
        column.overflow = "fold"
    out.print(table)


def emit_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, default=str) + "\n")


class ProgressReport:
    """Progress of one long job on stderr: a bar in a terminal, plain lines when piped, nothing if quiet.

    ``update(done, total)`` for counted work, ``say(message)`` for phases. Plain lines come at most
    every ``every_s`` seconds (a phase change always prints), so a short run prints none.
    """

    def __init__(self, label: str, *, quiet: bool = False, unit: str = "", every_s: float = 2.0,
                 counted: bool = True) -> None:
        self.label, self.unit, self.every_s, self.counted = label, unit, every_s, counted
        self.live = err.is_terminal and not quiet
        self.plain = not err.is_terminal and not quiet
        self._start = time.monotonic()
        self._last_line = self._start
        self._text = ""
        self._bar: Any = None
        self._task: Any = None

    def __enter__(self) -> ProgressReport:
        if self.live:
            from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

            columns = [SpinnerColumn(), TextColumn(self.label), *([BarColumn()] if self.counted else []),
                       TextColumn("{task.description}"), TimeElapsedColumn()]
            self._bar = Progress(*columns, console=err, transient=True)
            self._bar.__enter__()
            self._task = self._bar.add_task("", total=None)
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._bar is not None:
            self._bar.__exit__(kind, exc, tb)

    def update(self, done: float, total: float | None = None) -> None:
        """``done`` of ``total`` units (``total`` None: not known yet)."""
        unit = f" {self.unit}" if self.unit else ""
        if total:
            text = f"{done:,.0f}/{total:,.0f}{unit} ({done / total:.0%})"
        else:
            text = f"{done:,.0f}{unit}"
        self._show(text, done=done, total=total, force=False)

    def say(self, message: str) -> None:
        """A new phase of the work: replaces the bar's text, and is always printed as a plain line."""
        self._show(message, done=None, total=None, force=True)

    def _show(self, text: str, *, done: float | None, total: float | None, force: bool) -> None:
        self._text = text
        if self._bar is not None:
            fields: dict[str, Any] = {"description": text}
            if done is not None:
                fields |= {"completed": done, "total": total}
            self._bar.update(self._task, **fields)
        elif self.plain:
            now = time.monotonic()
            if force or now - self._last_line >= self.every_s:
                self._last_line = now
                sys.stderr.write(f"{self.label}: {text} [{now - self._start:,.0f} s]\n")
                sys.stderr.flush()


@contextmanager
def interrupted(note: Callable[[], str]) -> Iterator[None]:
    """Ctrl-C during the work: one line saying what was kept, then exit code 130 (never 0, never a traceback)."""
    try:
        yield
    except KeyboardInterrupt:
        sys.stderr.write(f"\ninterrupted: {note()}\n")
        sys.stderr.flush()
        raise SystemExit(EXIT_INTERRUPTED) from None


def check_out_dir(path: Path, flag: str = "--out") -> Path:
    """Fail before the work, not after it, when the output folder cannot be written: the absolute path."""
    folder = path.expanduser().resolve()
    if folder.exists() and not folder.is_dir():
        raise InputError(f"{flag} {path}: is a file, not a folder; give a folder for the run outputs")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".inferplan-write-check-{time.monotonic_ns()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise InputError(f"{flag} {path}: cannot write there ({exc.strerror or exc}); choose a folder you can "
                         f"write, e.g. {flag} ./inferplan-runs") from None
    return folder
