"""CLI verb `accuracy`: the shipped profiles against every public measurement the project carries."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from inferplan.cli import options
from inferplan.cli.app import app
from inferplan.cli.output import check_out_dir, emit_json, interrupted, out, print_table

if TYPE_CHECKING:
    from inferplan.api import ErrorGroup

ACCURACY_EPILOG = (
    "Examples:\n\n"
    "  inferplan accuracy\n\n"
    "  inferplan accuracy --measurements ../shared/data/measurements --json\n\n"
    "  inferplan accuracy --fit --measurements ../shared/data/measurements   # rewrite the shipped fits\n\n"
    "  inferplan accuracy --residuals --measurements ../shared/data/measurements   # only the ranges"
)


@app.command("accuracy", epilog=ACCURACY_EPILOG)
def accuracy_cmd(
    measurements: Annotated[Path | None, typer.Option(
        help="a folder holding vidur/profiling/network (Vidur's all-reduce profiles) and/or "
             "llamacpp_xiongjiedai_llama3_gpus_apple.csv (llama-bench results) to check and fit collectives "
             "and llama.cpp")]
    = None,
    fit: Annotated[bool, typer.Option("--fit", help="refit the shipped profiles and residuals (catalog/profiles.yaml, "
                                                    "residuals.yaml, and collectives.yaml with --measurements) in the "
                                                    "installed package: run from a source checkout installed with "
                                                    "`pip install -e .`; minutes")] = False,
    residuals: Annotated[bool, typer.Option("--residuals", help="rewrite only catalog/residuals.yaml (the ranges "
                                                                "predictions carry) from this replay, keeping the "
                                                                "fitted profiles; needs --measurements")] = False,
    out_dir: options.OutDir = Path("inferplan-runs"),
    as_json: options.Json = False,
) -> None:
    """Replay the carried measurements (offline throughput, online TTFT/ITL, all-reduces, llama-bench) and print the
    median error per dataset, device, engine and phase, with which figures the fit saw."""
    from inferplan.api import InputError, run_accuracy

    if residuals and measurements is None:
        raise InputError("--residuals rewrites the shipped ranges, llama.cpp's and the collectives' included: give "
                         "--measurements DIR (the folder with Vidur's profiles and the llama-bench table)")
    folder = check_out_dir(out_dir)
    say = (lambda _msg: None) if as_json else (lambda msg: out.print(msg, markup=False))
    with interrupted(lambda: "the replay stopped; nothing was written"):
        run = run_accuracy(folder, measurements=measurements, refit=fit, residuals=residuals, progress=say)
    if as_json:
        emit_json({"groups": [g.to_json() for g in run.groups], "fitted": list(run.fitted),
                   "memory": run.memory.to_json() if run.memory else None, "report": str(run.report_path)})
        return
    for line in run.fitted:
        out.print(f"wrote {line}", markup=False)
    _print_groups(run.groups)
    if run.memory:
        m = run.memory
        out.print(f"memory verdict (llama-bench): {m.ran_predicted_fit} of {m.ran} configurations that ran are "
                  f"predicted to fit; {m.oom_predicted_oom} of {m.oom} that ran out of memory are predicted not to"
                  + (f"; missed: {', '.join(m.misses)}" if m.misses else ""), markup=False)
    out.print(f"report: {run.report_path}")


def _print_groups(groups: list[ErrorGroup]) -> None:
    """One table per dataset (|error| median, signed median, worst), narrow enough for an 80-column terminal."""
    from rich.table import Table

    for dataset in dict.fromkeys(g.dataset for g in groups):
        t = Table(title=f"{dataset}: prediction error against the published figures")
        for col in ("device", "engine", "phase", "rows", "median |err|", "median err", "worst", "in fit"):
            t.add_column(col)
        for g in (g for g in groups if g.dataset == dataset):
            t.add_row(g.device, g.engine, g.phase, str(g.count), f"{g.median_abs_pct:.1f}%",
                      f"{g.median_signed_pct:+.1f}%", f"{g.max_abs_pct:.0f}%", g.in_fit)
        print_table(t)
