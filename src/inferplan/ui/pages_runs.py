"""The registry's pages: every run (searched, filtered, paged), one run, a comparison, a run's files."""

from __future__ import annotations

from pathlib import Path

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response
from starlette.routing import Route

from inferplan import api
from inferplan.ui.app import Workbench, bench

PAGE_SIZE = 50
# what a what-if re-plan keeps of the plan it starts from: (form field, PlanRequest field)
KEPT = (("model", "model"), ("workload", "workload"), ("seed", "seed"), ("objective", "objective"),
        ("executor", "executor"), ("duration", "duration_s"), ("engines", "engines"),
        ("max_quality_loss", "max_quality_loss_pct"), ("power_budget", "power_budget_w"),
        ("disaggregation", "disaggregation"), ("spec", "spec"), ("confidence", "confidence"),
        ("allow_unknown_quality", "allow_unknown_quality"))
KINDS = ("fit", "sim", "plan", "bench", "validate")


async def home(request: Request) -> Response:
    return RedirectResponse("/runs", status_code=303)


async def runs(request: Request) -> Response:
    wb, p = bench(request), request.query_params
    try:
        page = max(1, int(p.get("page") or 1))
    except ValueError:
        raise api.InputError(f"page: expected a whole number, got '{p.get('page')}'") from None
    query = api.RunQuery(text=(p.get("q") or "").strip(), kind=p.get("kind") or None, model=p.get("model") or None,
                         device=p.get("device") or None, since=p.get("since") or None, until=p.get("until") or None,
                         limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
    records, total = wb.registry.search(query)
    facets = wb.registry.facets()
    facets["kind"] = sorted(set(facets["kind"]) | set(KINDS))
    rows = [(r, api.run_headline(r)) for r in records]
    pages = max(1, -(-total // PAGE_SIZE))
    return wb.page(request, "runs.html", rows=rows, total=total, page=page, pages=pages, facets=facets,
                   query=query, args={k: v for k, v in p.items() if k != "page"})


def run_by_id(wb: Workbench, run_id: str) -> api.RunRecord:
    """The run with exactly this id (the pages link whole ids; a part of one is the CLI's typing shortcut)."""
    try:
        r = wb.registry.get(run_id)
    except api.InputError:
        r = None
    if r is None or r.id != run_id:
        raise HTTPException(404, f"no run '{run_id}' in {wb.settings.registry}")
    return r


def record(request: Request) -> api.RunRecord:
    return run_by_id(bench(request), request.path_params["run_id"])


async def run_page(request: Request) -> Response:
    wb, r = bench(request), record(request)
    beside_id = request.query_params.get("beside")
    beside = run_by_id(wb, beside_id) if beside_id else None
    sections = api.run_sections(r)
    what_if = api.comparison_sections([beside, r]) if beside is not None else []
    return wb.page(request, "run.html", run=r, body=api.sections_html(sections), beside=beside,
                   what_if=api.sections_html(what_if) if what_if else None, files=api.run_files(r),
                   plan=api.plan_doc(r), devices=sorted(api.device_catalog()), texts=_deploy_texts(r),
                   kept=_kept(r, wb))


def _kept(r: api.RunRecord, wb: Workbench) -> dict[str, str]:
    """The plan's other inputs as form values, so a what-if changes only what the person changes."""
    out = {}
    for name, key in KEPT:
        v = r.inputs.get(key)
        out[name] = (",".join(map(str, v)) if isinstance(v, list | tuple) else "on" if v is True
                     else "" if v is None or v is False else str(v))
    for name, key in (("autoscale_window", "autoscale_window_s"), ("scale_down_delay", "scale_down_delay_s")):
        seconds = r.inputs.get(key)
        out[name] = f"{seconds / 60:g}" if isinstance(seconds, int | float) else ""  # the form takes minutes
    for name in ("workload", "model"):  # a trace or config.json uploaded here: by its reference again
        out[name] = wb.uploads.ref_for(out[name]) or out[name]
    return out


def _deploy_texts(r: api.RunRecord) -> list[tuple[str, str]]:
    """The deploy files' contents, to read and copy in the page (small text files only)."""
    return [(f.name, f.path.read_text(errors="replace")) for f in api.run_files(r)
            if f.name.startswith("deploy/") and f.size < 256 * 1024]


async def run_report(request: Request) -> Response:
    r = record(request)
    if not r.report or Path(r.report).resolve() not in {f.path.resolve() for f in api.run_files(r)}:
        raise HTTPException(404, f"run {r.id} has no report on this machine (was its folder moved?)")
    return FileResponse(r.report, media_type="text/html")


async def run_file(request: Request) -> Response:
    """A file of the run, by its name inside the run's recorded folder: only names the folder lists are served."""
    r, name = record(request), request.path_params["name"]
    match = next((f for f in api.run_files(r) if f.name == name), None)
    if match is None:
        raise HTTPException(404, f"run {r.id} has no file '{name}'")
    return FileResponse(match.path, filename=match.path.name)


async def compare(request: Request) -> Response:
    wb = bench(request)
    ids = [i for i in request.query_params.getlist("ids") if i]
    if len(ids) < 2:  # noqa: PLR2004
        raise api.InputError("compare: pick two or more runs on the runs page (the checkboxes), then Compare")
    picked = [run_by_id(wb, run_id) for run_id in dict.fromkeys(ids)]
    return wb.page(request, "compare.html", runs=picked, body=api.sections_html(api.comparison_sections(picked)))


ROUTES = [
    Route("/", home),
    Route("/runs", runs),
    Route("/runs/{run_id}", run_page),
    Route("/runs/{run_id}/report", run_report),
    Route("/runs/{run_id}/files/{name:path}", run_file),
    Route("/compare", compare),
]
