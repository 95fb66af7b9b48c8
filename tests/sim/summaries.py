"""A small, valid simulation `Summary` for tests that need one without simulating."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from inferplan.sim.summary_types import Latency, SimStats, SloCheck, Summary


def latency(p90: float) -> Latency:
    """A latency whose percentiles sit around its p90."""
    return Latency(p50=p90 / 2, p90=p90, p99=p90 * 1.5, mean=p90 / 2)


def sample_summary(**changes: Any) -> Summary:
    """Ten requests on one replica, every SLO met; ``changes`` replaces fields (``dataclasses.replace``)."""
    base = Summary(
        num_requests=10, num_finished=10, num_rejected=0, rejected_by_reason={}, makespan_s=20.0,
        ttft_s=latency(0.4), tpot_s=latency(0.03), itl_s=latency(0.03), e2e_s=latency(6.0),
        queue_delay_s=latency(0.01),
        throughput_output_tokens_per_s=100.0, throughput_input_tokens_per_s=500.0, throughput_requests_per_s=0.5,
        goodput_requests_per_s=0.5, slo_attainment=1.0,
        slos=(SloCheck(slo="ttft_p90<=2000ms", value_s=0.4, met=True),), slos_met=True,
        sim=SimStats(num_preemptions=0, prefix_cache_hit_tokens=0, cost_per_hour=2.99,
                     cost_per_million_output_tokens=8.3, energy_j=1.0e4, energy_j_per_output_token=5.0,
                     utilization=(0.5,), num_replicas=1, num_steps=400, policy="vllm", router="round-robin",
                     overload=None),
    )
    return replace(base, **changes)
