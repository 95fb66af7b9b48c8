"""`fit`, `--help` and the catalogs start without loading the planner, the simulator, scipy or plotly."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("scipy", "plotly", "inferplan.sim.loop", "inferplan.plan.search", "inferplan.runs", "httpx", "jinja2")


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
