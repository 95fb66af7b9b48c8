"""The public Python API: what the CLI (and later the UI) call. Names here are stable."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from inferplan.perf.deployment import Deployment, EngineLimits
from inferplan.perf.fit import FitResult, fit, fit_all_formats
from inferplan.perf.profile import DeviceProfile
from inferplan.specs.catalog import get_device, get_kv_format, get_model, get_weight_format

if TYPE_CHECKING:
    from inferplan.plan.search import PlanRequest, PlanResult, plan
    from inferplan.runs import PlanRun, SimulationConfig, SimulationRun, run_plan, run_simulation, simulate_config
    from inferplan.sim.summary_types import Summary

# Loaded on first use: `fit` answers without importing the simulator, the planner or scipy.
_LAZY = {"PlanRequest": "inferplan.plan.search", "PlanResult": "inferplan.plan.search", "plan": "inferplan.plan.search",
         "PlanRun": "inferplan.runs", "SimulationConfig": "inferplan.runs", "SimulationRun": "inferplan.runs",
         "run_plan": "inferplan.runs", "run_simulation": "inferplan.runs", "simulate_config": "inferplan.runs",
         "Summary": "inferplan.sim.summary_types"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'inferplan.api' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)

__all__ = [
    "Deployment",
    "EngineLimits",
    "FitResult",
    "PlanRequest",
    "PlanResult",
    "PlanRun",
    "SimulationConfig",
    "SimulationRun",
    "Summary",
    "build_deployment",
    "fit",
    "fit_all_formats",
    "plan",
    "run_plan",
    "run_simulation",
    "simulate_config",
]


def build_deployment(
    model: str,
    device: str,
    *,
    weights: str | None = None,
    kv: str = "bf16",
    tp: int = 1,
    pp: int = 1,
    ep: bool = False,
    dp_attention: bool = False,
    limits: EngineLimits | None = None,
    profile: Path | None = None,
) -> Deployment:
    """Resolve names (or file paths) into a validated Deployment.

    ``weights`` None: the checkpoint's own format (a quantized config.json), else bf16.
    """
    prof = DeviceProfile.load(profile) if profile else None
    dev = (prof.resolve_device(device) if prof else None) or get_device(device)
    spec = get_model(model)
    return Deployment(
        model=spec,
        device=dev,
        weights=get_weight_format(weights or spec.default_weights),
        kv=get_kv_format(kv),
        tp=tp,
        pp=pp,
        ep=ep,
        dp_attention=dp_attention,
        limits=limits or EngineLimits(),
        profile=prof,
    )
