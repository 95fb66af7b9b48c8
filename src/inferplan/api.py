"""The public Python API: what the CLI (and later the UI) call. Names here are stable."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from inferplan.errors import InputError
from inferplan.plan.defaults import DEFAULT_DEVICES, DEFAULT_SLO

if TYPE_CHECKING:
    from inferplan.deploy.fleet_files import router_attainment
    from inferplan.deploy.shared_files import write_shared_deploy
    from inferplan.fileio import write_text_atomic
    from inferplan.measure.accuracy import ErrorGroup
    from inferplan.measure.accuracy_run import AccuracyRun, run_accuracy
    from inferplan.measure.calibrate import (
        DEFAULT_FIT,
        FACTORS,
        Calibration,
        base_for,
        calibrate,
        fit_to_bench,
        from_llama_bench,
        from_validate_summary,
    )
    from inferplan.measure.gpu_bench import catalog_match, fit_gpu_profile, measure_gpu
    from inferplan.measure.microbench import fit_profile, implausible, measure
    from inferplan.measure.request_record import RequestRecord
    from inferplan.perf.deployment import Deployment, EngineLimits
    from inferplan.perf.fit import FitResult, fit, fit_all_formats
    from inferplan.perf.profile import DeviceProfile
    from inferplan.perf.resolve import resolve_deployment, resolve_speculation
    from inferplan.perf.resolve import resolve_deployment as build_deployment
    from inferplan.plan.autoscale import AutoscaleResult
    from inferplan.plan.fleet_spec import fleet_budget_split, read_fleet_spec, write_fleet_json
    from inferplan.plan.search import PlanRequest, PlanResult, plan
    from inferplan.plan.shared_devices import share_devices
    from inferplan.report.compare import compare_runs, comparison_sections, headline_error, write_compare_report
    from inferplan.report.fit_view import fit_sections
    from inferplan.report.html import Section, plotly_js, report_css, sections_html
    from inferplan.report.kept import RunFile, plan_doc, run_files
    from inferplan.report.plan_report import OBJECTIVE_SAYS, usd, why_chosen
    from inferplan.report.views import run_sections
    from inferplan.runs import (
        BenchConfig,
        PlanRun,
        SimulationConfig,
        SimulationRun,
        record_fit,
        run_bench,
        run_plan,
        run_simulation,
        run_validate,
        simulate_config,
    )
    from inferplan.sim.slo import parse_slos
    from inferplan.sim.stored import run_headline, stored_summary
    from inferplan.sim.summary_types import BenchContext, Latency, SimContext, Summary
    from inferplan.specs.catalog import (
        device_catalog,
        engine_catalog,
        kv_format_catalog,
        local_profile_path,
        model_catalog,
        weight_format_catalog,
    )
    from inferplan.specs.hardware import DeviceSpec
    from inferplan.store import Registry, RunQuery, RunRecord
    from inferplan.workload.classes import join_workloads
    from inferplan.workload.presets import workload_names

# Loaded on first use: `--help` loads none of them, `fit` not the simulator, the planner or scipy.
_LAZY = {name: module for module, names in {
    "inferplan.perf.deployment": ("Deployment", "EngineLimits"),
    "inferplan.perf.fit": ("FitResult", "fit", "fit_all_formats"),
    "inferplan.measure.accuracy": ("ErrorGroup",),
    "inferplan.measure.accuracy_run": ("AccuracyRun", "run_accuracy"),
    "inferplan.perf.profile": ("DeviceProfile",),
    "inferplan.perf.resolve": ("resolve_deployment", "build_deployment", "resolve_speculation"),
    "inferplan.specs.catalog": ("device_catalog", "engine_catalog", "kv_format_catalog", "local_profile_path",
                                "model_catalog", "weight_format_catalog"),
    "inferplan.specs.hardware": ("DeviceSpec",),
    "inferplan.store": ("Registry", "RunQuery", "RunRecord"),
    "inferplan.workload.classes": ("join_workloads",),
    "inferplan.plan.fleet_spec": ("fleet_budget_split", "read_fleet_spec", "write_fleet_json"),
    "inferplan.plan.shared_devices": ("share_devices",),
    "inferplan.deploy.shared_files": ("write_shared_deploy",),
    "inferplan.measure.calibrate": ("Calibration", "DEFAULT_FIT", "FACTORS", "base_for", "calibrate",
                                    "from_llama_bench", "from_validate_summary", "fit_to_bench"),
    "inferplan.measure.request_record": ("RequestRecord",),
    "inferplan.measure.microbench": ("fit_profile", "implausible", "measure"),
    "inferplan.measure.gpu_bench": ("catalog_match", "fit_gpu_profile", "measure_gpu"),
    "inferplan.report.compare": ("compare_runs", "comparison_sections", "headline_error", "write_compare_report"),
    "inferplan.deploy.fleet_files": ("router_attainment",),
    "inferplan.report.plan_report": ("OBJECTIVE_SAYS", "usd", "why_chosen"),
    "inferplan.report.fit_view": ("fit_sections",),
    "inferplan.report.html": ("Section", "plotly_js", "report_css", "sections_html"),
    "inferplan.report.kept": ("RunFile", "plan_doc", "run_files"),
    "inferplan.report.views": ("run_sections",),
    "inferplan.sim.stored": ("run_headline", "stored_summary"),
    "inferplan.sim.slo": ("parse_slos",),
    "inferplan.fileio": ("write_text_atomic",),
    "inferplan.workload.presets": ("workload_names",),
    "inferplan.plan.search": ("PlanRequest", "PlanResult", "plan"),
    "inferplan.plan.autoscale": ("AutoscaleResult",),
    "inferplan.sim.summary_types": ("BenchContext", "Latency", "SimContext", "Summary"),
    "inferplan.runs": ("BenchConfig", "PlanRun", "SimulationConfig", "SimulationRun", "run_bench", "run_plan",
                       "run_simulation", "run_validate", "simulate_config", "record_fit"),
}.items() for name in names}


_ALIASES = {"build_deployment": "resolve_deployment"}  # the name the API has always had


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'inferplan.api' has no attribute {name!r}")
    return getattr(importlib.import_module(module), _ALIASES.get(name, name))

__all__ = [
    "BenchConfig",
    "Calibration",
    "DEFAULT_DEVICES",
    "DEFAULT_FIT",
    "DEFAULT_SLO",
    "Deployment",
    "DeviceProfile",
    "DeviceSpec",
    "EngineLimits",
    "FACTORS",
    "FitResult",
    "InputError",
    "PlanRequest",
    "PlanResult",
    "PlanRun",
    "Registry",
    "RequestRecord",
    "RunRecord",
    "SimulationConfig",
    "SimulationRun",
    "base_for",
    "Summary",
    "BenchContext",
    "Latency",
    "SimContext",
    "AutoscaleResult",
    "build_deployment",
    "calibrate",
    "compare_runs",
    "device_catalog",
    "engine_catalog",
    "run_accuracy",
    "AccuracyRun",
    "ErrorGroup",
    "fit",
    "fit_all_formats",
    "fit_profile",
    "fit_gpu_profile",
    "catalog_match",
    "measure_gpu",
    "fit_to_bench",
    "from_llama_bench",
    "from_validate_summary",
    "headline_error",
    "implausible",
    "kv_format_catalog",
    "local_profile_path",
    "measure",
    "model_catalog",
    "plan",
    "resolve_deployment",
    "resolve_speculation",
    "router_attainment",
    "run_bench",
    "run_plan",
    "run_simulation",
    "run_validate",
    "simulate_config",
    "join_workloads",
    "read_fleet_spec",
    "fleet_budget_split",
    "share_devices",
    "write_shared_deploy",
    "write_fleet_json",
    "weight_format_catalog",
    "write_compare_report",
    "OBJECTIVE_SAYS",
    "usd",
    "why_chosen",
    "record_fit",
    "RunQuery",
    "fit_sections",
    "Section",
    "plotly_js",
    "report_css",
    "sections_html",
    "RunFile",
    "comparison_sections",
    "plan_doc",
    "run_files",
    "run_sections",
    "stored_summary",
    "parse_slos",
    "workload_names",
    "write_text_atomic",
    "run_headline",
]


