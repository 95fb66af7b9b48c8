"""The `inferplan` command line: one entry point, a verb per job, clear errors (exit 2), Ctrl-C exit 130."""

from __future__ import annotations  # noqa: I001  # verb imports below keep --help order

import os
import sys

import typer

from inferplan.cli.app import app, app_for

# each module registers its verbs on `app`, in the order `--help` lists them
from inferplan.cli import plan, sim, catalog, measure, profile, calibrate, accuracy, runs, ui  # noqa: E402, F401, I001
from inferplan.cli.output import EXIT_INTERRUPTED
from inferplan.api import InputError

__all__ = ["app", "main"]


def main() -> None:
    """Console entry point: bad input is one line on stderr and exit code 2, never a traceback."""
    sys.exit(run(sys.argv[1:]))


def run(argv: list[str]) -> int:
    """Run one command line; the exit code (2 bad input, 130 interrupted, 1 an internal error)."""
    try:
        code = app_for(argv)(args=argv, prog_name="inferplan", standalone_mode=False)
    except InputError as exc:
        return _fail(f"error: {exc}", 2)  # one line, never wrapped, so scripts can grep it
    except KeyboardInterrupt:
        return _fail("\ninterrupted: nothing was recorded", EXIT_INTERRUPTED)
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename else ""
        return _fail(f"error: {exc.strerror or exc}{where}; check the path and its permissions", 2)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except typer.Abort:
        return _fail("\ninterrupted: nothing was recorded", EXIT_INTERRUPTED)
    except typer.Exit as exc:
        return int(exc.exit_code)
    except Exception as exc:  # a usage error (shown as click shows it) or a bug (one line, with how to see more)
        show = getattr(exc, "show", None)
        if callable(show):
            show()
            return int(getattr(exc, "exit_code", 2))
        if os.environ.get("INFERPLAN_DEBUG"):
            raise
        return _fail(f"internal error: {type(exc).__name__}: {exc} (a bug in inferplan; rerun with "
                     "INFERPLAN_DEBUG=1 for the traceback and report it)", 1)
    return code if isinstance(code, int) else 0


def _fail(message: str, code: int) -> int:
    sys.stderr.write(message + "\n")
    return code


if __name__ == "__main__":
    main()
