"""What `plan` assumes when the user says nothing: read by the planner and the CLI alike (no heavy imports)."""

from __future__ import annotations

DEFAULT_SLO = "ttft_p90=2s,tpot_p90=100ms"
DEFAULT_DEVICES = ("l4", "a10g", "l40s", "a100-80gb", "h100-sxm")
