"""Planning session workloads: probes replay whole sessions, so the capacity counts their shared prefixes."""

from __future__ import annotations

import time

import numpy as np

from inferplan.plan.capacity import probe_workload, session_bucket
from inferplan.plan.search import PlanRequest, make_buckets, plan
from inferplan.workload.presets import make_workload


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
    assert time.monotonic() - start < 120
