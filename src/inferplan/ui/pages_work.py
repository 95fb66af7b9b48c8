"""The working pages: fit (updated as the inputs change), simulate and plan forms, and their jobs."""

from __future__ import annotations

import asyncio
import html
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from inferplan import api
from inferplan.ui import forms
from inferplan.ui.app import Workbench, bench, error_status
from inferplan.ui.jobs import TERMINAL

ROUTERS = ("round-robin", "least-outstanding", "least-kv", "power-of-two", "session-affinity", "cache-aware")


def choices() -> dict[str, Any]:
    """What the forms' lists offer: the catalogs the CLI takes names from."""
    return {"models": sorted(api.model_catalog()), "devices": sorted(api.device_catalog()),
            "weights": sorted(api.weight_format_catalog()), "kvs": sorted(api.kv_format_catalog()),
            "engines": sorted(api.engine_catalog()), "workloads": api.workload_names(), "routers": ROUTERS,
            "default_devices": api.DEFAULT_DEVICES, "default_slo": api.DEFAULT_SLO, "spec_methods": forms.SPEC_METHODS,
            "policies": forms.POLICIES}


@dataclass(frozen=True, slots=True)
class Posted:
    """A posted form, read whole and closed: its text fields, its device boxes and its files."""

    values: dict[str, str]
    devices: list[str]
    files: dict[str, tuple[str, bytes]]

    def keep(self, field: str, kind: str, wb: Workbench) -> str | None:
        """The uploaded file of ``field`` kept under the registry's folder, as the reference the forms take."""
        if field not in self.files:
            return None
        name, data = self.files[field]
        return wb.uploads.save(kind, name, data)


async def read_form(request: Request, wb: Workbench) -> Posted:
    """The posted form, refused before it is read where it says it is over the upload limit."""
    length = request.headers.get("content-length")
    if length and length.isdigit():
        wb.uploads.refuse_over(int(length), "the upload", slack=2**20)
    async with request.form(max_files=2, max_fields=200) as form:
        files = {k: (v.filename or "", await v.read(wb.uploads.max_bytes + 1)) for k, v in form.items()
                 if isinstance(v, UploadFile) and v.filename}
        return Posted({k: v for k, v in form.items() if isinstance(v, str)},
                      [d for d in form.getlist("devices") if isinstance(d, str)], files)


# ---- fit ------------------------------------------------------------------------------------------------
async def fit_page(request: Request) -> Response:
    wb = bench(request)
    args = dict(request.query_params)
    try:
        result, error, status = _fit_body(wb, args), None, 200
    except api.InputError as exc:
        result, error, status = "", str(exc), 400
    return wb.page(request, "fit.html", status=status, args=args, result=result, error=error, **choices())


async def fit_result(request: Request) -> Response:
    """The fit's sections for the page's current inputs (fetched as they change)."""
    wb = bench(request)
    try:
        return HTMLResponse(_fit_body(wb, dict(request.query_params)))
    except api.InputError as exc:
        return HTMLResponse(f'<p class="error" role="alert">{html.escape(str(exc))}</p>', status_code=400)


def _fit_body(wb: Workbench, args: dict[str, str]) -> str:
    f = forms.fit_inputs(args, wb.uploads)
    dep = f.deployment()
    result = api.fit(dep, context=f.context)
    formats = api.fit_all_formats(dep, context=f.context)
    return str(api.sections_html(api.fit_sections(result, formats)))


async def fit_upload(request: Request) -> Response:
    wb = bench(request)
    form = await read_form(request, wb)
    ref = form.keep("config", "config", wb)
    if ref is None:
        raise forms.FormError("config", "choose a config.json to upload")
    args = form.values | {"model": ref}
    f = forms.fit_inputs(args, wb.uploads)
    try:
        f.deployment()  # parsed by the CLI's loader now: a bad file is refused here
    except api.InputError as exc:
        stored = wb.uploads.path(ref)
        raise forms.FormError("config", f"the uploaded {form.files['config'][0]} cannot be used: "
                              f"{str(exc).replace(str(stored), 'it')}") from None
    return RedirectResponse("/fit?" + _query(args), status_code=303)


async def fit_record(request: Request) -> Response:
    wb = bench(request)
    args = (await read_form(request, wb)).values
    f = forms.fit_inputs(args, wb.uploads)
    run_id = api.record_fit(api.fit(f.deployment(), context=f.context), f.record_inputs(), wb.registry)
    return RedirectResponse(f"/runs/{run_id}", status_code=303)


# ---- simulate and plan ------------------------------------------------------------------------------
async def simulate_page(request: Request) -> Response:
    return bench(request).page(request, "simulate.html", args=dict(request.query_params), error=None, **choices())


async def simulate_start(request: Request) -> Response:
    wb = bench(request)
    form = await read_form(request, wb)
    args = form.values
    try:
        args["workload"] = form.keep("trace", "trace", wb) or args.get("workload", "chat")
        cfg = forms.simulation_config(args, wb.uploads)
    except api.InputError as exc:
        return wb.page(request, "simulate.html", status=error_status(exc),
                       args=args, error=str(exc), **choices())
    job = wb.jobs.submit("sim", cfg, f"simulate {cfg.model} on {cfg.replicas}x {cfg.device}, {args['workload']}")
    return RedirectResponse(f"/jobs/{job.id}", status_code=303)


async def plan_page(request: Request) -> Response:
    return bench(request).page(request, "plan.html", args=dict(request.query_params), error=None,
                               picked=request.query_params.getlist("devices") or list(api.DEFAULT_DEVICES),
                               **choices())


async def plan_start(request: Request) -> Response:
    wb = bench(request)
    form = await read_form(request, wb)
    args, devices = form.values, form.devices
    try:
        args["workload"] = form.keep("trace", "trace", wb) or args.get("workload", "chat")
        req = forms.plan_request(args, devices, wb.uploads)
        beside = args.get("beside") or None
        if beside:
            wb.registry.get(beside)
    except api.InputError as exc:
        return wb.page(request, "plan.html", status=error_status(exc), args=args,
                       error=str(exc), picked=devices, **choices())
    job = wb.jobs.submit("plan", req, f"plan {req.model}, {args['workload']}, {req.slo}", beside=beside)
    return RedirectResponse(f"/jobs/{job.id}", status_code=303)


# ---- jobs -----------------------------------------------------------------------------------------------
async def jobs_page(request: Request) -> Response:
    wb = bench(request)
    return wb.page(request, "jobs.html", jobs=[j.snapshot() for j in wb.jobs.list()])


async def job_page(request: Request) -> Response:
    wb = bench(request)
    job = wb.jobs.get(request.path_params["job_id"])
    return wb.page(request, "job.html", job=job.snapshot())


async def job_json(request: Request) -> Response:
    return JSONResponse(bench(request).jobs.get(request.path_params["job_id"]).snapshot())


async def job_events(request: Request) -> Response:
    """Server-sent events: the job's state whenever it changes, until it ends."""
    wb = bench(request)
    job = wb.jobs.get(request.path_params["job_id"])

    async def stream() -> AsyncIterator[str]:
        last = None
        while True:
            snap = job.snapshot()
            view = {k: v for k, v in snap.items() if k != "elapsed_s"}
            if view != last:
                last = view
                yield f"data: {json.dumps(snap)}\n\n"
            if snap["state"] in TERMINAL or await request.is_disconnected():
                return
            await asyncio.sleep(0.2)

    return StreamingResponse(stream(), media_type="text/event-stream", headers={"cache-control": "no-store"})


async def job_cancel(request: Request) -> Response:
    job = bench(request).jobs.cancel(request.path_params["job_id"])
    return RedirectResponse(f"/jobs/{job.id}", status_code=303)


def _query(args: dict[str, str]) -> str:
    return urlencode({k: v for k, v in args.items() if v})


ROUTES = [
    Route("/fit", fit_page),
    Route("/fit/result", fit_result),
    Route("/fit/upload", fit_upload, methods=["POST"]),
    Route("/fit/record", fit_record, methods=["POST"]),
    Route("/simulate", simulate_page),
    Route("/simulate", simulate_start, methods=["POST"]),
    Route("/plan", plan_page),
    Route("/plan", plan_start, methods=["POST"]),
    Route("/jobs", jobs_page),
    Route("/jobs/{job_id}.json", job_json),
    Route("/jobs/{job_id}", job_page),
    Route("/jobs/{job_id}/events", job_events),
    Route("/jobs/{job_id}/cancel", job_cancel, methods=["POST"]),
]
