"""The Typer application every verb module registers on; nothing heavy is imported here.

Verb modules import the modelling code inside their command bodies, so `inferplan fit`,
`--help` and the catalog listings start without loading the simulator, scipy or plotly.
"""

from __future__ import annotations

import typer

app = typer.Typer(
    help="Find the cheapest way to serve an LLM for your traffic, latency, quality and hardware limits.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # help texts are plain: "[ray]" and "[bool]" print as written
)
runs_app = typer.Typer(help="List, show and compare recorded runs (simulate, plan, bench, validate).",
                       no_args_is_help=True, rich_markup_mode=None)
app.add_typer(runs_app, name="runs")
