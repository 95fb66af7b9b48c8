"""A fleet spec (``plan --fleet fleet.yaml``): several models, each with its own workload, tenants and SLOs.

```yaml
devices: [h100-sxm, l40s, l4]        # optional: the device types every model may use
share_devices: true                  # optional (default true): try two models on one device
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
tokens they were served. Then pairs of models are tried on shared devices (``plan/shared_devices.py``).
Everything is checked before any planning starts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import yaml

from inferplan.errors import InputError
from inferplan.perf.power import busy_power_w
from inferplan.sim.slo import parse_slos
from inferplan.sim.summary_types import Summary
from inferplan.specs.catalog import get_device, get_model
from inferplan.workload.classes import SEPARATOR, split_classes

if TYPE_CHECKING:
    from inferplan.plan.shared_devices import SharedDevices

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
    share_devices: bool = True  # try pairs of models on one device after planning each alone


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
    unknown = sorted(set(doc) - {"models", "devices", "share_devices"})
    if unknown:
        raise InputError(f"--fleet {path}: unknown field '{unknown[0]}' (the fields are models, devices, "
                         "share_devices)")
    devices = _devices(path, doc.get("devices"))
    share = doc.get("share_devices", True)
    if not isinstance(share, bool):
        raise InputError(f"--fleet {path}: share_devices: expected true or false, got {share!r}")
    return FleetSpec(tuple(_entry(f"--fleet {path}: models[{i}]", e) for i, e in enumerate(doc["models"])), devices,
                     share)


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


def fleet_budget_split(powers: Sequence[float], budget_w: float | None) -> list[float] | None:
    """A fleet-wide power budget (``plan --fleet --power-budget W``) as each model's share, in proportion to
    the power its fleet drew planned alone; None where the models alone fit it (it does not bind)."""
    total = sum(powers)
    if budget_w is None or total <= budget_w:
        return None
    return [budget_w * p / total for p in powers]


def write_fleet_json(spec: Path, runs: list[Any], folder: Path, shared: Sequence[SharedDevices] = (),
                     shared_files: Sequence[Path] = (), budget_w: float | None = None, *,
                     shared_tried: bool = True) -> Path:
    """fleet.json beside the plans: each model's fleet planned alone, the models sharing devices, the fleet's
    cost and power with them, and each tenant's share."""
    import json

    from inferplan.fileio import write_text_atomic

    models, tenants = [], []
    cost_of = shared_model_costs(shared)
    for run in runs:
        r, doc = run.result, run.doc
        models.append({"model": r.request.model, "workload": r.request.workload, "slo": r.request.slo,
                       "run_id": run.run_id, "cost_per_hour": doc["cost_per_hour"], "power_w": doc["fleet_power_w"],
                       "verified": doc["verified"], "fleet": [f"{f['count']} x {f['device']} ({f['weights']})"
                                                              for f in doc["fleet"]],
                       "slo_attainment": r.summary.slo_attainment, "fairness_jain": r.summary.fairness_jain,
                       "plan": str(run.out_dir / "plan.json")})
        cost = cost_of.get(r.request.model, doc["cost_per_hour"])
        tenants += [vars_of(t) for t in tenant_costs(r.request.model, r.summary, cost)]
    apart = sum(m["cost_per_hour"] for m in models)
    power = sum(m["power_w"] for m in models)
    groups = []
    for s, path in zip(shared, shared_files, strict=True):
        alone_w = sum(m["power_w"] for m in models if m["model"] in s.models)
        power += s.count * busy_power_w(s.deployments[0].device) - alone_w
        groups.append(shared_json(s) | {"deploy": str(path)})
    doc_out = {"spec": str(spec), "cost_per_hour": apart - sum(s.apart_cost_per_hour - s.cost_per_hour for s in shared),
               "cost_per_hour_apart": apart, "power_w": power, "power_budget_w": budget_w,
               "shared_tried": shared_tried,
               "verified": all(m["verified"] for m in models) and all(g["verified"] for g in groups),
               "models": models, "shared": groups, "tenants": tenants}
    path = folder / f"fleet-{runs[0].run_id}.json"
    write_text_atomic(path, json.dumps(doc_out, indent=2) + "\n")
    return path


def shared_model_costs(shared: Sequence[SharedDevices]) -> dict[str, float]:
    """Each shared model's part of its devices' cost: the share of the devices' busy time its servers took
    (the replicas alternate model by model, as ``share_devices`` places them)."""
    out: dict[str, float] = {}
    for s in shared:
        busy = np.array(s.summary.sim.utilization if s.summary.sim else [1.0] * len(s.models))
        per_model = np.array([busy[k :: len(s.models)].sum() for k in range(len(s.models))])
        parts = per_model / per_model.sum() if per_model.sum() > 0 else np.full(len(s.models), 1 / len(s.models))
        out |= {m: s.cost_per_hour * float(p) for m, p in zip(s.models, parts, strict=True)}
    return out


def shared_json(s: SharedDevices) -> dict[str, Any]:
    sim = s.summary.sim
    return {"models": list(s.models), "device": s.deployments[0].device.name, "count": s.count,
            "memory_shares": {d.model.name: d.limits.gpu_memory_utilization for d in s.deployments},
            "cost_per_hour": s.cost_per_hour, "apart_cost_per_hour": s.apart_cost_per_hour,
            "saving_pct": s.saving_pct, "verified": all(v.met for v in s.verdicts),
            "energy_j_per_output_token": sim.energy_j_per_output_token if sim else None,
            "by_model": [{"model": v.model, "requests": v.num_requests, "rejected": v.num_rejected,
                          "ttft_p90_s": v.ttft_p90_s, "tpot_p90_s": v.tpot_p90_s, "slos": list(v.checks),
                          "slo_attainment": v.slo_attainment, "met": v.met} for v in s.verdicts]}


def vars_of(t: TenantCost) -> dict[str, Any]:
    return {"model": t.model, "tenant": t.tenant, "cost_per_hour": t.cost_per_hour, "slo_attainment": t.slo_attainment}
