"""A recorded run, or several, as report sections: what the workbench shows, drawn by the report's own builders.

Everything here reads what a run left behind (its registry row, and the files under its recorded folder:
``digest.json``, ``verification.json``, ``plan.json``, ``requests.csv``), never the live result.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from inferplan.errors import InputError
from inferplan.measure.bench_records import read_request_latencies
from inferplan.report.compare import COMPARED, compared_metrics
from inferplan.report.html import Section, Table
from inferplan.report.plan_report import tradeoff_figures
from inferplan.report.sim_report import latency_section, sim_sections, slo_section, summary_section, timeseries_section
from inferplan.sim.digest import RunDigest
from inferplan.sim.stored import SUMMARY_KINDS, stored_summary
from inferplan.store import RunRecord

Array = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class RunFile:
    """A file a run wrote, by its name inside the run's folder (what a download link may name)."""

    name: str
    path: Path
    size: int


def run_files(r: RunRecord) -> list[RunFile]:
    """The files under the run's recorded folder (deploy files included), by their names relative to it."""
    if not r.out_dir or not Path(r.out_dir).is_dir():
        return []
    root = Path(r.out_dir)
    return [RunFile(p.relative_to(root).as_posix(), p, p.stat().st_size) for p in sorted(root.rglob("*"))
            if p.is_file() and not p.name.startswith(".")]


def run_digest(r: RunRecord) -> RunDigest | None:
    """The charts' data a simulation (``digest.json``) or a plan's verification (``verification.json``) kept."""
    for name in ("digest.json", "verification.json"):
        path = Path(r.out_dir or "") / name
        if r.out_dir and path.is_file():
            try:
                return RunDigest.read(path)
            except (ValueError, KeyError, TypeError) as exc:
                raise InputError(f"run {r.id}: {path} cannot be read ({exc})") from None
    return None


def run_latencies(r: RunRecord) -> dict[str, Array] | None:
    """Finished requests' latencies: from the run's digest, else its requests.csv; None when it kept neither."""
    d = run_digest(r)
    if d is not None:
        return d.latencies
    path = Path(r.out_dir or "") / "requests.csv"
    return read_request_latencies(path) if r.out_dir and path.is_file() else None


def plan_doc(r: RunRecord) -> dict[str, Any] | None:
    path = Path(r.out_dir or "") / "plan.json"
    if r.kind != "plan" or not r.out_dir or not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text())
    except ValueError as exc:
        raise InputError(f"run {r.id}: {path} is not JSON ({exc})") from None
    return doc if isinstance(doc, dict) else None


def run_sections(r: RunRecord) -> list[Section]:
    """A run's view: what its kind reports, then its inputs."""
    if r.kind == "fit":
        body = fit_record_sections(r.summary)
    elif r.kind == "plan":
        body = plan_sections(r)
    elif r.kind in SUMMARY_KINDS:
        s = stored_summary(r)
        assert s is not None
        if s.sim is not None:
            body = sim_sections(s, run_digest(r))
        else:  # a bench: measured latencies, no simulator totals
            lat = run_latencies(r)
            body = [summary_section(s), *filter(None, [slo_section(s)])]
            body += [latency_section({"measured": lat})] if lat else []
    else:
        body = [Section("Summary", table=Table(["", "value"], _flat_rows(r.summary)))]
    return [*body, Section("Inputs", table=Table(["input", "value"], _flat_rows(r.inputs)))]


def plan_sections(r: RunRecord) -> list[Section]:
    """The chosen fleet, why it won, the trade-offs (chosen point starred, SLO lines drawn), the verification."""
    doc, s = plan_doc(r), stored_summary(r)
    if doc is None:
        return [summary_section(s)] if s else []
    fleet = [[f"{p['count']}x {p['device']}", p.get("parallelism", f"TP{p['tensor_parallel']}"), p["engine"],
              p["weights"], p["kv_cache"], str(p["max_num_seqs"]),
              "-" if p["quality_loss_pct"] is None else f"{p['quality_loss_pct']:.2f}%"] for p in doc["fleet"]]
    verified = "verified by simulating the whole workload" if doc["verified"] else "NOT verified: it missed an SLO"
    out = [Section("Chosen fleet", note=f"${doc['cost_per_hour']:.2f}/hour, {verified}; router {doc['router']}. "
                   f"Why this fleet: {doc.get('why_chosen', '-')}",
                   table=Table(["replicas", "parallel", "engine", "weights", "KV", "max_num_seqs", "quality loss"],
                               fleet))]
    rows = doc.get("trade_offs") or doc.get("pareto_front", [])
    chosen = {p.get("label", "") for p in doc["fleet"]}
    out.append(Section("Trade-offs", note="Single-type fleets of every screened configuration that meets the "
                       "SLOs, by the analytical model; outlined: the Pareto front over cost, energy and SLO margin.",
                       figures=tradeoff_figures(rows, chosen, doc.get("slo_lines", []))))
    if s is not None:
        out += [summary_section(s), *filter(None, [slo_section(s)])]
    d = run_digest(r)
    if d is not None:
        out += [latency_section({"verification": d.latencies}, "Verification run: latency"),
                timeseries_section(d, "Verification run: over time")]
    return out


def fit_record_sections(doc: dict[str, Any]) -> list[Section]:
    """A recorded fit's headline figures."""
    keep = ("model", "device", "weights_format", "kv_format", "parallelism", "context", "fits_context",
            "max_context", "max_concurrent_sequences", "decode_tokens_per_s_batch1", "decode_tokens_per_s_batch_max",
            "ttft_s", "quality_loss_pct")
    return [Section("Fit", table=Table(["", "value"], _flat_rows({k: doc.get(k) for k in keep})))]


def comparison_sections(runs: list[RunRecord]) -> list[Section]:
    """Runs side by side, the first the reference: every metric they report with the change from the first,
    their latency CDFs overlaid, and the inputs that differ."""
    if len(runs) < 2:  # noqa: PLR2004
        raise InputError("pick at least two runs to compare")
    metrics = [compared_metrics(stored_summary(r)) for r in runs]
    rows = []
    for m in COMPARED:
        values = [x.get(m) for x in metrics]
        if all(v is None for v in values):
            continue
        ref = values[0]
        rows.append([m, *[_change(v, ref, k) for k, v in enumerate(values)]])
    names = [f"{r.kind} {r.id}" for r in runs]
    out = [Section("Metrics", note="Each cell: the value, and its change from the first run.",
                   table=Table(["metric", *names], rows))]
    lat = {name: x for name, r in zip(names, runs, strict=True) if (x := run_latencies(r)) is not None}
    if lat:
        out.append(latency_section(lat, note="" if len(lat) == len(runs) else
                                   "Runs that kept no per-request latencies are left out."))
    inputs = [{k: v for k, v in _flat_rows(r.inputs)} for r in runs]
    keys = sorted({k for x in inputs for k in x})
    diff = [[k, *[x.get(k, "-") for x in inputs]] for k in keys if len({x.get(k, "-") for x in inputs}) > 1]
    out.append(Section("Configuration diff", note="" if diff else "The runs' inputs are the same.",
                       table=Table(["input", *names], diff) if diff else None))
    return out


def _change(v: float | None, ref: float | None, k: int) -> str:
    if v is None:
        return "-"
    text = f"{v:,.4g}"
    if k == 0 or ref is None or not ref:
        return text
    return f"{text} ({100 * (v - ref) / abs(ref):+.1f}%)"


def _flat_rows(d: dict[str, Any], prefix: str = "") -> list[list[str]]:
    rows: list[list[str]] = []
    for k, v in d.items():
        if isinstance(v, dict) and v:
            rows += _flat_rows(v, f"{prefix}{k}.")
        else:
            rows.append([f"{prefix}{k}", "-" if v is None or v == [] or v == {} else
                         (f"{v:,.4g}" if isinstance(v, float) else str(v))])
    return rows
