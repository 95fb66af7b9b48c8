"""Prefill/decode disaggregation (DistServe): KV moves between pools; when it helps and when it does not."""

from __future__ import annotations

import numpy as np
import pytest

from inferplan.api import build_deployment
from inferplan.sim.cluster import Cluster, SimOptions
from inferplan.sim.loop import kv_transfer_s, simulate
from inferplan.sim.policies import get_policy
from inferplan.sim.slo import parse_slos
from inferplan.sim.state import FINISHED
from inferplan.sim.summary import summarize
from inferplan.workload.presets import make_workload

H100 = build_deployment("llama-3.1-8b", "h100-sxm")


def test_requests_prefill_on_one_pool_and_decode_on_the_other() -> None:
    """Every request finishes with all its tokens; the first token comes from the prefill pool and the
    second token waits at least for the KV transfer."""
    wl = make_workload("chat", rate=4, duration_s=60, seed=2)
    res = simulate(wl, Cluster.disaggregated([H100], [H100]), get_policy("vllm"),
                   options=SimOptions(check_invariants=True))
    t = res.table
    assert (t.status == FINISHED).all() and np.array_equal(t.out_done, t.output)
    multi = t.output > 1
    assert (t.replica[multi] == 1).all()  # finished on the decode replica (index 1; prefill is 0)
    transfer = np.array([kv_transfer_s(H100, int(p), None) for p in t.input[multi]])
    assert (t.max_itl[multi] >= transfer).all()


def test_kv_transfer_time_by_hand() -> None:
    """2,000 tokens x 128 KiB over NVLink (450 GB/s one way x 0.7) + 2 us."""
    expected = 2000 * 131_072 / (450e9 * 0.7) + 2e-6
    assert kv_transfer_s(H100, 2000, None) == expected


def test_disaggregation_meets_a_tpot_slo_that_aggregation_misses() -> None:
    """DistServe's case: long prompts interfere with decoding on shared replicas. Two H100s, summarize at
    8 req/s, TPOT p90 <= 14 ms: aggregated misses it (about 17 ms), one prefill + one decode replica meets
    both SLOs (about 12 ms)."""
    slos = parse_slos("ttft_p90=1s,tpot_p90=14ms")
    wl = make_workload("summarize", rate=8, duration_s=300, seed=1)
    agg = summarize(simulate(wl, Cluster.replicas([H100, H100]), get_policy("vllm"), router="least-outstanding"), slos)
    dis = summarize(simulate(wl, Cluster.disaggregated([H100], [H100]), get_policy("vllm")), slos)
    assert not agg.slos_met and dis.slos_met
    assert dis.tpot_s.p90 is not None and agg.tpot_s.p90 is not None and dis.tpot_s.p90 < agg.tpot_s.p90


def test_disaggregation_does_not_help_prefill_heavy_traffic_with_a_tight_ttft() -> None:
    """Code completion (long prompts, ~28 output tokens) at 20 req/s with TTFT p90 <= 0.5 s: two aggregated
    replicas share the prefill work and meet it; one prefill replica alone cannot."""
    slos = parse_slos("ttft_p90=500ms,tpot_p90=50ms")
    wl = make_workload("code", rate=20, duration_s=300, seed=1)
    agg = summarize(simulate(wl, Cluster.replicas([H100, H100]), get_policy("vllm"), router="least-outstanding"), slos)
    dis = summarize(simulate(wl, Cluster.disaggregated([H100], [H100]), get_policy("vllm")), slos)
    assert agg.slos_met and not dis.slos_met


A100 = build_deployment("llama-3.1-8b", "a100-80gb")


def test_kv_goes_over_the_network_between_device_types() -> None:
    """Prefill on an H100, decode on an A100: another machine, so the KV moves at the H100's 50 GB/s
    network link (x 0.7) instead of NVLink; the second token waits at least that long."""
    assert kv_transfer_s(H100, 2000, None, across_nodes=True) == 2000 * 131_072 / (50e9 * 0.7) + 2e-6
    wl = make_workload("chat", rate=2, duration_s=60, seed=3)
    res = simulate(wl, Cluster.disaggregated([H100], [A100]), get_policy("vllm"),
                   options=SimOptions(check_invariants=True))
    t = res.table
    multi = t.output > 1
    assert (t.status == FINISHED).all() and (t.replica[multi] == 1).all()
    network = np.array([kv_transfer_s(H100, int(p), None, across_nodes=True) for p in t.input[multi]])
    assert (t.max_itl[multi] >= network).all()


def test_a_fleet_mixing_aggregated_replicas_and_a_prefill_decode_unit() -> None:
    """Arrivals go to the prefill replica (0) and the aggregated one (1); prompts prefilled on 0 decode on
    its own pool only (replica 3, not 2), and requests served whole stay on 1. Nothing is lost."""
    wl = make_workload("chat", rate=6, duration_s=60, seed=4)
    res = simulate(wl, Cluster.mixed([H100], [H100], [H100, H100], [[1]]), get_policy("vllm"),
                   router="round-robin", options=SimOptions(check_invariants=True))
    t = res.table
    assert (t.status == FINISHED).all() and np.array_equal(t.out_done, t.output)
    assert set(np.unique(t.replica).tolist()) <= {0, 1, 3}
    assert (t.replica == 1).sum() > 0 and (t.replica == 3).sum() > 0
    assert res.replicas[2].busy_s == 0.0  # the decode replica no prefill replica hands to


def test_handoff_must_name_decode_replicas_for_every_prefill_replica() -> None:
    with pytest.raises(ValueError, match="handoff"):
        Cluster.mixed([H100, H100], [], [H100], [[0]])
