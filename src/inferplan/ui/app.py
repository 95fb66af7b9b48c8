"""The workbench's ASGI app: settings, page rendering, error pages and static files; routes live beside it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from inferplan import __version__, api
from inferplan.ui.jobs import JobManager
from inferplan.ui.security import Access, AccessMiddleware
from inferplan.ui.uploads import Uploads, UploadTooLarge

STATIC = Path(__file__).parent / "static"


@dataclass(frozen=True, slots=True)
class Settings:
    registry: Path
    host: str = "127.0.0.1"
    port: int = 8765
    token: str | None = None
    max_upload_mb: float = 64.0
    max_jobs: int = 2

    @property
    def out_dir(self) -> Path:
        """Where the workbench's runs write their files: beside the registry, like its uploads."""
        return self.registry.parent / "inferplan-runs"


@dataclass(frozen=True, slots=True)
class Workbench:
    """What every page handler needs, kept on ``app.state.bench``."""

    settings: Settings
    registry: api.Registry
    uploads: Uploads
    jobs: JobManager
    templates: jinja2.Environment

    def page(self, request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        html = self.templates.get_template(template).render(
            request=request, version=__version__, registry=self.settings.registry, **context)
        return HTMLResponse(html, status_code=status)

    def error(self, request: Request, status: int, message: str, **context: Any) -> HTMLResponse:
        return self.page(request, "error.html", status=status, status_code=status, message=message, **context)


def bench(request: Request) -> Workbench:
    wb: Workbench = request.app.state.bench
    return wb


def create_app(settings: Settings) -> Starlette:
    """The app for one registry; its jobs stop with it."""
    from inferplan.ui import pages_runs, pages_work  # noqa: PLC0415  (they import this module's helpers)

    registry = api.Registry(settings.registry)
    folder = settings.registry.parent
    plotly = api.plotly_js().encode()  # served from here, never fetched from the network
    env = jinja2.Environment(loader=jinja2.PackageLoader("inferplan.ui", "templates"), autoescape=True,
                             undefined=jinja2.StrictUndefined)
    env.globals["report_css"] = api.report_css()
    wb = Workbench(settings, registry, Uploads(folder / "uploads", int(settings.max_upload_mb * 2**20)),
                   JobManager(settings.registry, settings.out_dir, settings.max_jobs, history=folder / "ui-jobs"), env)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        wb.jobs.shutdown()

    routes: list[BaseRoute] = [*pages_runs.ROUTES, *pages_work.ROUTES,
                               Route("/static/plotly.min.js", _script(plotly)),
                               Mount("/static", app=StaticFiles(directory=STATIC), name="static")]
    app = Starlette(routes=routes, lifespan=lifespan,
                    middleware=[Middleware(AccessMiddleware, access=Access(settings.token, settings.host))],
                    exception_handlers={HTTPException: _http_error, api.InputError: _input_error,
                                        Exception: _server_error})
    app.state.bench = wb
    return app


def _script(body: bytes) -> Callable[[Request], Awaitable[Response]]:
    async def serve(request: Request) -> Response:
        return Response(body, media_type="text/javascript", headers={"cache-control": "max-age=86400"})

    return serve


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return bench(request).error(request, exc.status_code, str(exc.detail))


def error_status(exc: Exception) -> int:
    """The HTTP status of bad input: 413 for an upload over the limit, else 400."""
    return 413 if isinstance(exc, UploadTooLarge) else 400


async def _input_error(request: Request, exc: Exception) -> Response:
    return bench(request).error(request, error_status(exc), str(exc))


async def _server_error(request: Request, exc: Exception) -> Response:
    return bench(request).error(request, 500, f"{type(exc).__name__}: {exc} (a bug in inferplan; please report "
                                "it with the page's address)")
