"""CLI verb `ui`: the local web workbench over the same API and run registry."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from inferplan.api import InputError
from inferplan.cli import options
from inferplan.cli.app import app
from inferplan.cli.output import out

UI_EPILOG = (
    "Examples:\n\n"
    "  inferplan ui\n\n"
    "  inferplan ui --registry runs.sqlite --port 9000 --no-browser\n\n"
    "  inferplan ui --host 0.0.0.0 --token SECRET     # reachable from other machines, with a token"
)


@app.command("ui", epilog=UI_EPILOG)
def ui_cmd(
    registry: options.RegistryPath = None,
    host: Annotated[str, typer.Option(help="address to listen on (beyond 127.0.0.1 a token is "
                                           "required)")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 8765,
    token: Annotated[str | None, typer.Option(help="access token every request must carry (generated when "
                                                   "--host is not loopback and none is given)")] = None,
    no_browser: Annotated[bool, typer.Option("--no-browser", help="do not open a browser")] = False,
    max_upload_mb: Annotated[float, typer.Option(help="largest upload (trace or config.json), MiB")] = 64.0,
    max_jobs: Annotated[int, typer.Option(help="simulations and plans running at once (the rest wait)")] = 2,
) -> None:
    """Start the local web workbench: runs, fit, simulate, plan and compare in the browser."""
    try:
        from inferplan.ui.server import serve  # noqa: PLC0415  (the optional extra)
    except ImportError as exc:
        raise InputError(f"the workbench needs the ui extra ({exc.name} is missing): "
                         "pip install 'inferplan[ui]'") from None
    from inferplan.api import Registry
    from inferplan.ui.app import Settings

    if max_jobs < 1 or not max_upload_mb > 0:
        raise InputError(f"--max-jobs must be at least 1 and --max-upload-mb above 0 (got {max_jobs}, "
                         f"{max_upload_mb:g})")
    reg = Registry(registry)  # a bad registry path fails here, before the server starts
    settings = Settings(registry=reg.path.resolve(), host=host, port=port, token=token, max_upload_mb=max_upload_mb,
                        max_jobs=max_jobs)
    started = serve(settings, open_browser=not no_browser, say=lambda m: out.print(m, soft_wrap=True, markup=False))
    if not started:
        raise InputError(f"the workbench could not start on {host}:{port}")
    out.print(f"stopped the workbench; every finished run is kept in {reg.path}; jobs still running were cancelled",
              soft_wrap=True, markup=False)
    sys.exit(130)
