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


def app_for(argv: list[str]) -> typer.Typer:
    """The app holding only the verb ``argv`` runs, or the whole app for anything else.

    Typer turns every registered command's signature into click parameters on each call
    (about 30 ms for all the verbs, a tenth of `inferplan fit`); running one verb needs
    only its own. Groups (`runs`), `--help` and unknown words get the whole app, so the
    listing and the "no such command" message are Typer's own.
    """
    verb = argv[0] if argv else ""
    for info in app.registered_commands:
        name = info.name or (info.callback.__name__.replace("_", "-") if info.callback else "")
        if verb and name == verb:
            one = typer.Typer(help=app.info.help, add_completion=False, pretty_exceptions_enable=False,
                              rich_markup_mode=None)
            one.callback()(_verbs)  # a group, as in the whole app, so `inferplan VERB ...` parses alike
            one.registered_commands = [info]
            return one
    return app


def _verbs() -> None:
    """The group callback of a one-verb app: nothing runs before the verb."""
