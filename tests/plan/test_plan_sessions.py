"""Planning session workloads: probes replay whole sessions, so the capacity counts their shared prefixes."""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np

from inferplan.api import EngineLimits, build_deployment
from inferplan.perf.memory import plan_memory
from inferplan.plan.capacity import probe_workload, session_bucket
from inferplan.plan.search import PlanRequest, make_buckets, plan
from inferplan.plan.space import Candidate, host_tier_ratios, with_host_tiers
from inferplan.workload.presets import make_workload
from inferplan.workload.request import Workload
from inferplan.workload.sessions import resent_tokens


def test_a_session_workload_is_one_bucket_and_its_probes_replay_whole_sessions() -> None:
    wl = make_workload("agentic", num_requests=600, seed=2)
    buckets, which = make_buckets(wl, 3)
    assert len(buckets) == 1 and buckets[0].sessions is wl and (which == 0).all()
    probe = probe_workload(buckets[0], rate=1.0, num_requests=200, seed=0)
    assert len(probe) == 200 and probe.chain_covers_outputs and probe.prefix_chain is not None
    for s in np.unique(probe.session_id)[:20].tolist():
        mine, orig = np.nonzero(probe.session_id == s)[0], np.nonzero(wl.session_id == s)[0]
        k = mine.shape[0]  # a session's first k turns, with their gaps and content
        assert np.allclose(np.diff(probe.arrival_s[mine]), np.diff(wl.arrival_s[orig[:k]]))
        assert [probe.prefix_chain[i] for i in mine] == [wl.prefix_chain[i] for i in orig[:k]]
    assert session_bucket(wl).fingerprint() != session_bucket(make_workload("agentic", num_requests=600,
                                                                            seed=3)).fingerprint()


def test_an_agent_workload_plans_with_its_cache_reuse() -> None:
    """Agent sessions (~63K-token contexts, ~90% reused): probes that drew requests by size priced every prompt
    as a fresh prefill and found no configuration for TTFT p90 5 s; replaying the sessions, one H100 holds
    0.5 req/s, verified."""
    start = time.monotonic()
    r = plan(PlanRequest(model="llama-3.1-8b", devices=("h100-sxm",), workload="agentic", rate=0.5,
                         num_requests=300, slo="ttft_p90=5s,tpot_p90=100ms", executor="serial", probe_requests=200))
    assert r.verified and r.summary.slos_met and sum(r.fleet.replicas) == 1
    assert [b.name for b in r.buckets] == ["sessions"]
    # a host KV tier of twice the device pool was simulated beside each configuration without one
    tiers = {t.dep.limits.cpu_kv_cache_gib for t in r.types}
    assert 0.0 in tiers and any(g > 0 for g in tiers)
    assert time.monotonic() - start < 120


def test_a_session_turn_prefills_only_what_its_previous_turn_did_not_hold() -> None:
    """Turn 2 resends turn 1's prompt (100) and response (20): 120 of its 150 tokens are cached at best; a
    first turn and a request outside any session resend nothing."""
    wl = Workload.build([0.0, 1.0, 2.0, 3.0], [100, 150, 40, 500], [20, 10, 5, 5], session_id=[7, 7, 8, -1],
                        prefix_group=[0, 0, 0, 0], prefix_tokens=[64] * 4)
    assert resent_tokens(wl).tolist() == [0, 120, 0, 0]
    assert not wl.all_sessions and make_workload("multi-turn", num_requests=50).all_sessions
    assert host_tier_ratios(True) == (0.0, 2.0) and host_tier_ratios(False) == (0.0,)


def test_a_host_tier_candidate_holds_twice_the_device_pool_within_host_memory() -> None:
    """One H100 (bf16 Llama-3.1-8B, 55.1 GiB of KV): a 110.3 GiB tier; on the 4 GiB of host memory of a
    small host the tier stops at host memory; without prefix caching there is no tier to try."""
    dep = build_deployment("llama-3.1-8b", "h100-sxm", limits=EngineLimits(enable_prefix_caching=True))
    cand = Candidate(device="h100-sxm", tp=1, weights="bf16", kv="bf16", max_num_seqs=256, max_num_batched_tokens=8192)
    got = list(with_host_tiers(cand, dep, (0.0, 2.0), 8192))
    assert [c.host_kv_ratio for c, _ in got] == [0.0, 2.0]
    kv_gib = plan_memory(dep).kv_budget_bytes / 2**30
    assert got[1][1].limits.cpu_kv_cache_gib == round(2 * kv_gib, 1)
    small = dep.device.model_copy(update={"host_memory_gib": 4.0})
    capped = list(with_host_tiers(cand, replace(dep, device=small), (2.0,), 8192))
    assert capped[0][1].limits.cpu_kv_cache_gib == 4.0
    plain = build_deployment("llama-3.1-8b", "h100-sxm")
    assert [c.host_kv_ratio for c, _ in with_host_tiers(cand, plain, (0.0, 2.0), 8192)] == [0.0]


def test_prefill_decode_units_are_built_from_replicas_without_a_host_tier() -> None:
    """A vLLM P/D server runs the NIXL connector, which its launch files cannot combine with the tier's, so the
    P/D search leaves tiered configurations out even when they screen as well as their untiered twins."""
    from inferplan.plan.analytic import screen
    from inferplan.plan.pools import Evaluated
    from inferplan.plan.search import _types_for
    from inferplan.plan.space import QualityBudget, SearchSpace, enumerate_candidates
    from inferplan.specs.catalog import get_model

    space = SearchSpace(devices=("h100-sxm",), tp=(1,), host_kv_ratio=(0.0, 2.0))
    cands = enumerate_candidates(get_model("llama-3.1-8b"), space, QualityBudget(0.0), context_tokens=8192,
                                 prefix_caching=True)
    survivors = [(Evaluated(c, est), d) for c, d, est in screen(cands, 2000.0, 200.0, ())]
    assert any(d.limits.cpu_kv_cache_gib for _, d in survivors)
    units = _types_for("disaggregated", survivors)
    assert units and all(not t.dep.limits.cpu_kv_cache_gib for t in units)
