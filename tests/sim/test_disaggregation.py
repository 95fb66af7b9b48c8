"""Prefill/decode disaggregation (DistServe): KV moves between pools; when it helps and when it does not."""

from __future__ import annotations

import numpy as np

from inferplan.api import build_deployment
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
    res = simulate(wl, [H100], get_policy("vllm"), prefill=[H100], check_invariants=True)
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
    8 req/s, TPOT p90 <= 15 ms: aggregated misses it, one prefill + one decode replica meets both SLOs."""
    slos = parse_slos("ttft_p90=1s,tpot_p90=15ms")
    wl = make_workload("summarize", rate=8, duration_s=300, seed=1)
    agg = summarize(simulate(wl, [H100, H100], get_policy("vllm"), router="least-outstanding"), slos)
    dis = summarize(simulate(wl, [H100], get_policy("vllm"), prefill=[H100]), slos)
    assert not agg["slos_met"] and dis["slos_met"]
    assert dis["tpot_s"]["p90"] < agg["tpot_s"]["p90"]


def test_disaggregation_does_not_help_prefill_heavy_traffic_with_a_tight_ttft() -> None:
    """Code completion (long prompts, ~28 output tokens) at 20 req/s with TTFT p90 <= 0.5 s: two aggregated
    replicas share the prefill work and meet it; one prefill replica alone cannot."""
    slos = parse_slos("ttft_p90=500ms,tpot_p90=50ms")
    wl = make_workload("code", rate=20, duration_s=300, seed=1)
    agg = summarize(simulate(wl, [H100, H100], get_policy("vllm"), router="least-outstanding"), slos)
    dis = summarize(simulate(wl, [H100], get_policy("vllm"), prefill=[H100]), slos)
    assert agg["slos_met"] and not dis["slos_met"]
