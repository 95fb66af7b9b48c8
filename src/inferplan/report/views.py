"""A recorded run as report sections: what the workbench shows, drawn by the report's own builders from what
the run kept (``report/kept.py``), never from the live result."""

from __future__ import annotations

from typing import Any

from inferplan.report.html import Section, Table, flat_rows
from inferplan.report.kept import plan_doc, run_digest, run_latencies
from inferplan.report.plan_report import fleet_table, tradeoff_figures, verification_sections
from inferplan.report.sim_report import latency_section, sim_sections, slo_section, summary_section
from inferplan.sim.stored import SUMMARY_KINDS, stored_summary
from inferplan.store import RunRecord


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
        body = [Section("Summary", table=Table(["", "value"], flat_rows(r.summary)))]
    return [*body, Section("Inputs", table=Table(["input", "value"], flat_rows(r.inputs)))]


def plan_sections(r: RunRecord) -> list[Section]:
    """The chosen fleet, why it won, the trade-offs (chosen point starred, SLO lines drawn), the verification."""
    doc, s = plan_doc(r), stored_summary(r)
    if doc is None:
        return [summary_section(s)] if s else []
    verified = "verified by simulating the whole workload" if doc["verified"] else "NOT verified: it missed an SLO"
    out = [Section("Chosen fleet", note=f"${doc['cost_per_hour']:.2f}/hour, {verified}; router {doc['router']}. "
                   f"Why this fleet: {doc.get('why_chosen', '-')}",
                   table=fleet_table(doc["fleet"]))]
    rows = doc.get("trade_offs") or doc.get("pareto_front", [])
    chosen = {p.get("label", "") for p in doc["fleet"]}
    out.append(Section("Trade-offs", note="Single-type fleets of every screened configuration that meets the "
                       "SLOs, by the analytical model; outlined: the Pareto front over cost, energy and SLO margin.",
                       figures=tradeoff_figures(rows, chosen, doc.get("slo_lines", []))))
    if s is not None:
        out += [summary_section(s), *filter(None, [slo_section(s)])]
    d = run_digest(r)
    return out + (verification_sections(d) if d is not None else [])


def fit_record_sections(doc: dict[str, Any]) -> list[Section]:
    """A recorded fit's headline figures."""
    keep = ("model", "device", "weights_format", "kv_format", "parallelism", "context", "fits_context",
            "max_context", "max_concurrent_sequences", "decode_tokens_per_s_batch1", "decode_tokens_per_s_batch_max",
            "ttft_s", "quality_loss_pct")
    return [Section("Fit", table=Table(["", "value"], flat_rows({k: doc.get(k) for k in keep})))]
