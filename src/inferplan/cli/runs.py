"""CLI verbs `runs list|show|compare`: every kind of recorded run, from any folder."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from inferplan.api import InputError
from inferplan.cli import options
from inferplan.cli.app import runs_app
from inferplan.cli.output import emit_json, out
from inferplan.cli.render import print_comparison, print_summary

if TYPE_CHECKING:
    from inferplan.api import RunRecord

RUNS_EPILOG = ("Examples:\n\n  inferplan runs list\n\n  inferplan runs list --kind plan --json\n\n"
               "  inferplan runs show RUN_ID\n\n  inferplan runs compare RUN_A RUN_B")


@runs_app.command("list", epilog=RUNS_EPILOG)
def runs_list(
    limit: Annotated[int, typer.Option(min=1, help="how many, newest first")] = 20,
    kind: Annotated[str | None, typer.Option(help="only runs of this kind: fit, sim, plan, bench, validate")] = None,
    registry: options.RegistryPath = None,
    as_json: options.Json = False,
) -> None:
    """Recorded runs, newest first: one line each, the id first, whole, so it can be copied."""
    from inferplan.api import Registry, run_headline

    reg = Registry(registry)
    records = reg.list(limit, kind)
    if as_json:
        emit_json([_brief(r) for r in records])
        return
    out.print(f"runs in {reg.path} (newest first; `inferplan runs show ID` for one)")
    if not records:
        out.print("no runs recorded yet: try `inferplan simulate` or `inferplan plan`")
    for r in records:
        # plain lines, never wrapped or cut, so an id can be copied whole
        out.print(f"{r.id}  {r.created_utc}  {run_headline(r)}  {r.label}", soft_wrap=True, markup=False)


@runs_app.command("show", epilog=RUNS_EPILOG)
def runs_show(
    run_id: Annotated[str, typer.Argument(help="run id (or a unique part of it)")],
    registry: options.RegistryPath = None,
    as_json: options.Json = False,
) -> None:
    """One run's inputs, summary and files, whatever its kind."""
    from inferplan.api import Registry

    r = Registry(registry).get(run_id)
    if as_json:
        emit_json(_brief(r) | {"inputs": r.inputs, "summary": r.summary})  # the row as stored
        return
    from inferplan.api import stored_summary

    s = stored_summary(r)
    out.print(f"[bold]{r.id}[/] ({r.kind}, {r.created_utc}): {r.label}", soft_wrap=True)
    if s is not None:
        print_summary(s, title=s.deployment or r.label)
    if r.kind == "plan":
        _show_plan(r.summary)
    if r.kind == "validate":
        out.print(f"median absolute error {r.summary.get('median_ape_pct', float('nan')):.1f}% over "
                  f"{r.summary.get('num_points', 0)} measured steps on {r.summary.get('device', '?')}")
    out.print(f"outputs: {r.out_dir}", soft_wrap=True)
    if r.report:
        out.print(f"report: {r.report}", soft_wrap=True)


def _show_plan(row: dict[str, Any]) -> None:
    cost = row.get("plan_cost_per_hour")
    if cost is not None:
        out.print(f"planned fleet: ${cost:.2f}/hour, " + ("verified by simulation" if row.get("verified")
                                                       else "[red]not verified[/]: the simulation missed an SLO"))


@runs_app.command("compare", epilog=RUNS_EPILOG)
def runs_compare(
    run_a: Annotated[str, typer.Argument(help="baseline run")],
    run_b: Annotated[str, typer.Argument(help="other run")],
    registry: options.RegistryPath = None,
    as_json: options.Json = False,
) -> None:
    """Main metrics of two runs side by side (any kinds), with the change from A to B."""
    a, b, rows = compared(registry, run_a, run_b)
    if as_json:
        emit_json({"a": a.id, "b": b.id, "metrics": rows})
        return
    print_comparison(rows, f"A = {a.id}   B = {b.id}", ("A", "B", "B - A", "change"))


def compared(registry: Path | None, run_a: str, run_b: str) -> tuple[RunRecord, RunRecord, list[dict[str, Any]]]:
    """Two recorded runs and their metric-by-metric rows; runs with no metric in common are an error."""
    from inferplan.api import Registry, compare_runs, stored_summary

    reg = Registry(registry)
    a, b = reg.get(run_a), reg.get(run_b)
    rows = compare_runs(stored_summary(a), stored_summary(b))
    if not rows:
        raise InputError(f"runs {a.id} ({a.kind}) and {b.id} ({b.kind}) report no metric in common; compare "
                         "simulate, bench and plan runs with each other")
    return a, b, rows


def _brief(r: RunRecord) -> dict[str, Any]:
    return {"id": r.id, "kind": r.kind, "created_utc": r.created_utc, "label": r.label, "out_dir": r.out_dir,
            "report": r.report}
