"""The public door: `inferplan.api` exports a fixed set of names."""

from __future__ import annotations

import inferplan.api as api


def test_public_names_are_pinned() -> None:
    """Changing the public API is a decision: this list changes with it."""
    assert sorted(api.__all__) == sorted([
        "Deployment", "EngineLimits", "FitResult", "PlanRequest", "PlanResult", "PlanRun", "SimulationConfig",
        "SimulationRun", "Summary", "build_deployment", "fit", "fit_all_formats", "plan", "run_plan",
        "run_simulation", "simulate_config",
    ])
    assert all(hasattr(api, name) for name in api.__all__)
