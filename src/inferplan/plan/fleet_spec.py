"""A fleet spec (``plan --fleet fleet.yaml``): several models, each with its own workload, tenants and SLOs.

```yaml
devices: [h100-sxm, l40s, l4]        # optional: the device types every model may use
models:
  - model: llama-3.1-8b
    workload: ["chat:name=support,rate=6", "batch:name=evals,count=2000,deadline=10m"]
    slo: ttft_p90=1s,tpot_p90=50ms
  - model: qwen3-8b
    workload: code:name=ide,rate=2
    slo: ttft_p90=2s,tpot_p90=80ms
```

Each model is planned on its own fleet of the shared device types; a workload's classes are its
tenants, each with its SLO attainment, and the fleet's cost is shared among them by the output
tokens they were served. Everything is checked before any planning starts.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from inferplan.errors import InputError
from inferplan.sim.slo import parse_slos
from inferplan.sim.summary_types import Summary
from inferplan.specs.catalog import get_device, get_model
from inferplan.workload.classes import SEPARATOR, split_classes

FIELDS = ("model", "workload", "slo")


@dataclass(frozen=True, slots=True)
class FleetEntry:
    model: str
    workload: str  # classes joined by " + ", as --workload records them
    slo: str | None  # None: the planner's default


@dataclass(frozen=True, slots=True)
class FleetSpec:
    entries: tuple[FleetEntry, ...]
    devices: tuple[str, ...] | None  # None: the planner's default


def read_fleet_spec(path: Path) -> FleetSpec:
    """The spec, every name and option checked, or an InputError naming the file, the entry and the field."""
    try:
        doc = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"--fleet {path}: cannot read it ({e})") from None
    except yaml.YAMLError as e:
        raise InputError(f"--fleet {path}: not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("models"), list) or not doc["models"]:
        raise InputError(f"--fleet {path}: expected 'models:', a list of entries each with 'model', 'workload' and "
                         "optionally 'slo'")
    unknown = sorted(set(doc) - {"models", "devices"})
    if unknown:
        raise InputError(f"--fleet {path}: unknown field '{unknown[0]}' (the fields are models, devices)")
    devices = _devices(path, doc.get("devices"))
    return FleetSpec(tuple(_entry(f"--fleet {path}: models[{i}]", e) for i, e in enumerate(doc["models"])), devices)


def _devices(path: Path, value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not value or not all(isinstance(d, str) for d in value):
        raise InputError(f"--fleet {path}: devices: expected a list of device names, e.g. [h100-sxm, l4]")
    for d in value:
        _named(f"--fleet {path}: devices", lambda d=d: get_device(d))
    return tuple(value)


def _entry(where: str, e: Any) -> FleetEntry:
    if not isinstance(e, dict):
        raise InputError(f"{where}: expected a mapping with model, workload and slo")
    unknown = sorted(set(e) - set(FIELDS))
    if unknown:
        raise InputError(f"{where}: unknown field '{unknown[0]}' (the fields are {', '.join(FIELDS)})")
    if not isinstance(e.get("model"), str):
        raise InputError(f"{where}: 'model' is missing; name a catalog model or a config.json")
    _named(f"{where}.model", lambda: get_model(e["model"]))
    workload = e.get("workload")
    if isinstance(workload, str):
        workload = [workload]
    if not isinstance(workload, list) or not workload or not all(isinstance(w, str) for w in workload):
        raise InputError(f"{where}.workload: expected a workload or a list of classes, e.g. [chat:rate=5]")
    text = SEPARATOR.join(workload)
    _named(f"{where}.workload", lambda: split_classes(text))
    slo = e.get("slo")
    if slo is not None:
        if not isinstance(slo, str):
            raise InputError(f"{where}.slo: expected objectives as text, e.g. ttft_p90=1s,tpot_p90=50ms")
        _named(f"{where}.slo", lambda: parse_slos(slo))
    return FleetEntry(e["model"], text, slo)


def _named(where: str, check: Any) -> None:
    """Run ``check``; an InputError it raises is said again with where in the spec it came from."""
    try:
        check()
    except InputError as err:
        raise InputError(f"{where}: {err}") from None


@dataclass(frozen=True, slots=True)
class TenantCost:
    """One tenant (a workload class) of one model: its share of the model's fleet and how it was served."""

    model: str
    tenant: str
    cost_per_hour: float
    slo_attainment: float | None


def tenant_costs(model: str, summary: Summary, cost_per_hour: float) -> list[TenantCost]:
    """The model's fleet cost split among its classes by the output tokens each was served (one class: all)."""
    if not summary.classes:
        return [TenantCost(model, model, cost_per_hour, summary.slo_attainment)]
    total = sum(c.throughput_output_tokens_per_s for c in summary.classes) or 1.0
    return [TenantCost(model, c.name, cost_per_hour * c.throughput_output_tokens_per_s / total, c.slo_attainment)
            for c in summary.classes]


def write_fleet_json(spec: Path, runs: list[Any], folder: Path) -> Path:
    """fleet.json beside the plans: each model's fleet, cost, power and service, and each tenant's share."""
    import json

    from inferplan.fileio import write_text_atomic

    models, tenants = [], []
    for run in runs:
        r, doc = run.result, run.doc
        models.append({"model": r.request.model, "workload": r.request.workload, "slo": r.request.slo,
                       "run_id": run.run_id, "cost_per_hour": doc["cost_per_hour"], "power_w": doc["fleet_power_w"],
                       "verified": doc["verified"], "fleet": [f"{f['count']} x {f['device']} ({f['weights']})"
                                                              for f in doc["fleet"]],
                       "slo_attainment": r.summary.slo_attainment, "fairness_jain": r.summary.fairness_jain,
                       "plan": str(run.out_dir / "plan.json")})
        tenants += [vars_of(t) for t in tenant_costs(r.request.model, r.summary, doc["cost_per_hour"])]
    doc_out = {"spec": str(spec), "cost_per_hour": sum(m["cost_per_hour"] for m in models),
               "power_w": sum(m["power_w"] for m in models), "verified": all(m["verified"] for m in models),
               "models": models, "tenants": tenants}
    path = folder / f"fleet-{runs[0].run_id}.json"
    write_text_atomic(path, json.dumps(doc_out, indent=2) + "\n")
    return path


def vars_of(t: TenantCost) -> dict[str, Any]:
    return {"model": t.model, "tenant": t.tenant, "cost_per_hour": t.cost_per_hour, "slo_attainment": t.slo_attainment}
