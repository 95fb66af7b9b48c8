"""The public door: `inferplan.api` exports a fixed set of names."""

from __future__ import annotations

import inferplan.api as api


def test_public_names_are_pinned() -> None:
    """Changing the public API is a decision: this list changes with it. It is what the CLI may use."""
    assert sorted(api.__all__) == sorted([
        "AccuracyRun", "AutoscaleResult", "BenchConfig", "BenchContext", "Calibration", "DEFAULT_DEVICES",
        "DEFAULT_FIT", "DEFAULT_SLO", "Deployment", "DeviceProfile", "DeviceSpec", "EngineLimits", "ErrorGroup",
        "FACTORS", "FitResult", "InputError", "Latency", "PlanRequest", "PlanResult", "PlanRun", "Registry",
        "RequestRecord", "RunRecord", "SimContext", "SimulationConfig", "SimulationRun", "Summary", "base_for",
        "build_deployment", "calibrate", "compare_runs", "device_catalog", "engine_catalog", "fit",
        "fit_all_formats", "fit_profile", "fleet_budget_split", "fit_to_bench", "from_llama_bench",
        "from_validate_summary", "fit_gpu_profile", "catalog_match", "measure_gpu",
        "headline_error", "implausible", "join_workloads", "kv_format_catalog", "local_profile_path", "measure",
        "model_catalog", "plan", "read_fleet_spec", "resolve_deployment", "resolve_speculation", "router_attainment",
        "run_accuracy", "run_bench", "share_devices", "write_shared_deploy",
        "run_plan", "run_simulation", "run_validate", "simulate_config", "weight_format_catalog",
        "write_compare_report", "write_fleet_json", "OBJECTIVE_SAYS", "usd", "why_chosen", "record_fit", "RunQuery",
        "fit_sections", "Section", "plotly_js", "report_css", "sections_html",
        "RunFile", "parse_slos", "workload_names", "write_text_atomic", "comparison_sections", "plan_doc",
        "run_files", "run_sections",
        "stored_summary", "run_headline",
    ])
    assert all(hasattr(api, name) for name in api.__all__)
