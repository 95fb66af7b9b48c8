"""`fit`, `--help` and the catalogs start without loading numpy, the planner, the simulator, scipy or plotly."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("numpy", "scipy", "plotly", "inferplan.sim.loop", "inferplan.plan.search", "inferplan.runs", "httpx", "jinja2")


def _loaded_after(*args: str) -> set[str]:
    code = ("import contextlib, io, sys\nfrom inferplan.cli import run\n"
            f"with contextlib.redirect_stdout(io.StringIO()): code = run({list(args)!r})\n"
            "assert code == 0, code\nprint(' '.join(sorted(sys.modules)))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return set(r.stdout.split())


def test_fit_models_devices_and_help_load_nothing_heavy() -> None:
    for args in (("fit",), ("models",), ("devices",), ("formats",), ("version",), ("--help",), ("plan", "--help")):
        loaded = _loaded_after(*args)
        heavy = {m for m in loaded if m.split(".")[0] in HEAVY or m in HEAVY}
        assert not heavy, (args, sorted(heavy)[:10])


def _output(code: str) -> str:
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       env={"COLUMNS": "100", "PATH": "/usr/bin:/bin", "NO_COLOR": "1"})
    return r.stdout + r.stderr


def test_running_one_verb_reads_exactly_as_the_whole_app() -> None:
    """`run` builds only the verb it runs; its help and usage errors must not change by it."""
    for args in (["fit", "--help"], ["fit", "--bogus"], ["simulate", "--help"], ["plan", "--rate"]):
        whole = _output("import sys\nfrom inferplan.cli import app\n"
                        f"app(args={args!r}, prog_name='inferplan')")
        one = _output(f"import sys\nfrom inferplan.cli import run\nsys.exit(run({args!r}))")
        assert one == whole, args
        if "--help" in args:
            assert f"Usage: inferplan {args[0]} [OPTIONS]" in one
