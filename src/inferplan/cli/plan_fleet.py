"""`plan --fleet fleet.yaml`: a plan per model of the spec, then the fleet's cost by model and by tenant."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from inferplan.api import InputError
from inferplan.cli.output import ProgressReport, emit_json, interrupted, out, print_table

if TYPE_CHECKING:
    from inferplan.api import PlanRequest, PlanRun, Registry


def plan_fleet(path: Path, base: PlanRequest, folder: Path, reg: Registry, *, as_json: bool) -> None:
    """Check the whole spec (names, classes, SLOs, each workload built), then plan each model in turn."""
    from inferplan.api import fleet_budget_split, read_fleet_spec, run_plan, write_fleet_json

    spec = read_fleet_spec(path)
    reqs = [replace(base, model=e.model, workload=e.workload, slo=e.slo or base.slo,
                    devices=spec.devices or base.devices) for e in spec.entries]
    for i, req in enumerate(reqs):
        try:
            req.build_workload()
        except InputError as err:
            raise InputError(f"--fleet {path}: models[{i}].workload: {err}") from None
    runs: list[PlanRun] = []

    def keep() -> str:
        done = ", ".join(r.run_id for r in runs)
        return (f"capacity searches so far are cached in {reg.path}; run the same command again to resume"
                + (f" (plans finished: {done})" if done else ""))

    def plan_all(todo: list[PlanRequest], note: str = "") -> list[PlanRun]:
        runs.clear()
        for k, req in enumerate(todo):
            if not as_json:
                out.print(f"model {k + 1} of {len(todo)}: {req.model}, workload {req.workload}, SLOs {req.slo}"
                          f"{note}{_budget_of(req)}", soft_wrap=True)
            with interrupted(keep), ProgressReport(f"planning {req.model}", quiet=as_json, counted=False) as bar:
                runs.append(run_plan(req, out_dir=folder, registry=reg, progress=bar.say))
        return list(runs)

    budget = base.power_budget_w  # the fleet's, split between the models only where it binds
    alone = plan_all([replace(r, power_budget_w=None) for r in reqs])
    split = fleet_budget_split([float(r.doc["fleet_power_w"]) for r in alone], budget)
    if split is not None:
        plan_all([replace(r, power_budget_w=w) for r, w in zip(reqs, split, strict=True)],
                 f" (again: the fleet's {budget:,.0f} W budget binds)")
    shared, files = _share(spec.share_devices, runs, folder, as_json=as_json)
    report = write_fleet_json(path, runs, folder, shared, files, budget, shared_tried=spec.share_devices)
    doc = json.loads(report.read_text())
    if as_json:
        emit_json(doc | {"fleet_file": str(report), "registry": str(reg.path)})
        return
    _print_fleet(doc)
    out.print(f"fleet summary: {report}; each model's plan, deploy files and report under {folder}", soft_wrap=True)


def _budget_of(req: PlanRequest) -> str:
    return "" if req.power_budget_w is None else f", within {req.power_budget_w:,.0f} W"


def _share(share: bool, runs: list[PlanRun], folder: Path, *, as_json: bool) -> tuple[list[Any], list[Path]]:
    """Pairs of the models on shared devices where one simulation of both says it costs less; their deploy
    files under ``folder/shared-N``."""
    if not share or len(runs) < 2:
        return [], []
    from inferplan.api import share_devices, write_shared_deploy

    with ProgressReport("sharing devices", quiet=as_json, counted=False) as bar:
        shared = share_devices([r.result for r in runs], say=bar.say, seed=runs[0].result.request.seed)
    files = []
    for k, s in enumerate(shared, start=1):
        write_shared_deploy(s, folder / f"shared-{k}")
        files.append(folder / f"shared-{k}")
    return shared, files


def _print_fleet(doc: dict[str, Any]) -> None:
    from rich.table import Table

    t = Table(title="Each model planned alone")
    for col in ("model", "fleet", "$/hour", "verified", "SLO attainment", "fairness (Jain)", "run"):
        t.add_column(col, justify="right" if col in ("$/hour", "SLO attainment", "fairness (Jain)") else "left")
    for m in doc["models"]:
        t.add_row(m["model"], "; ".join(m["fleet"]), f"{m['cost_per_hour']:.2f}", "yes" if m["verified"] else "NO",
                  _pct(m["slo_attainment"]), "-" if m["fairness_jain"] is None else f"{m['fairness_jain']:.3f}",
                  m["run_id"])
    print_table(t)
    _print_shared(doc)
    tenants = Table(title="by tenant (a model's cost shared by the output tokens each tenant was served; a shared "
                          "device's by the busy time each model took)")
    for col in ("model", "tenant", "$/hour", "SLO attainment"):
        tenants.add_column(col, justify="right" if col in ("$/hour", "SLO attainment") else "left")
    for x in doc["tenants"]:
        tenants.add_row(x["model"], x["tenant"], f"{x['cost_per_hour']:.2f}", _pct(x["slo_attainment"]))
    print_table(tenants)


def _print_shared(doc: dict[str, Any]) -> None:
    """The models sharing devices, each judged by its own SLOs in one simulation, and the fleet's total."""
    for g in doc["shared"]:
        shares = ", ".join(f"{m} {f:g}" for m, f in g["memory_shares"].items())
        out.print(f"shared: {' + '.join(g['models'])} on {g['count']} x {g['device']} (memory shares {shares}): "
                  f"${g['cost_per_hour']:.2f}/hour against ${g['apart_cost_per_hour']:.2f}/hour apart, "
                  f"{g['saving_pct']:.0f}% less; one simulation of both, each by its own SLOs:", soft_wrap=True)
        for v in g["by_model"]:
            out.print(f"  {v['model']}: {'; '.join(v['slos'])}; SLO attainment {v['slo_attainment']:.1%}"
                      f"{'' if v['met'] else ' - MISSED'}", soft_wrap=True)
        out.print(f"  deploy files in {g['deploy']} (launch.sh, kubernetes.yaml)", soft_wrap=True)
    if not doc["shared_tried"]:
        out.print("shared devices: not tried (share_devices: false)")
    elif not doc["shared"] and len(doc["models"]) > 1:
        out.print("shared devices: no pair of models met both their SLOs on fewer devices than apart", soft_wrap=True)
    budget = "" if doc["power_budget_w"] is None else f" (budget {doc['power_budget_w']:,.0f} W)"
    out.print(f"fleet: ${doc['cost_per_hour']:.2f}/hour (apart ${doc['cost_per_hour_apart']:.2f}/hour), "
              f"{doc['power_w']:,.0f} W at full load{budget}; verified {'yes' if doc['verified'] else 'NO'}",
              soft_wrap=True)


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.1%}"
