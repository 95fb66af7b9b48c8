"""The schedulers of SGLang and TensorRT-LLM, hand-computed like the vLLM ones in test_policies.py."""

from __future__ import annotations

import pytest

from inferplan.sim.policies import POLICIES
from inferplan.specs.catalog import engine_catalog, get_engine
from tests.conftest import make_replica, make_requests
from tests.sim.test_policies import arrive, step


def test_every_engine_runs_a_registered_scheduler_and_cites_its_rules() -> None:
    for engine in engine_catalog().values():
        assert engine.scheduler in POLICIES, engine.name
        assert engine.scheduler_source and engine.memory_source and engine.defaults.source
        assert all(o.source for o in engine.overhead.values())


def test_trtllm_admits_only_what_it_can_finish_and_never_preempts() -> None:
    """GUARANTEED_NO_EVICT: 16-token prompts with 32 outputs need ceil(48/16) = 3 blocks each at admission.
    With 7 blocks two run and the third waits; vLLM admits all three (one block each) and later preempts."""
    trt = make_replica(make_requests(3, 16, 32), num_blocks=7, policy="trtllm")
    arrive(trt, 0, 1, 2)
    assert set(step(trt).num_scheduled_tokens) == {0, 1}
    assert trt.state.pool.num_free == 1
    for _ in range(31):
        assert step(trt).preempted == ()
    vllm = make_replica(make_requests(3, 16, 32), num_blocks=7, policy="vllm")
    arrive(vllm, 0, 1, 2)
    assert set(step(vllm).num_scheduled_tokens) == {0, 1, 2}
    assert any(step(vllm).preempted for _ in range(31))


def test_sglang_runs_a_prefill_alone_and_the_decodes_wait() -> None:
    """SGLang's get_next_batch_to_run runs a new prefill batch first and alone ("Run prefill first if
    possible"): request 1 arriving while request 0 decodes gets a step of its own, in which request 0
    computes nothing; the step after, both decode. vLLM puts the new prompt in the same step as the decode."""
    for policy, first in (("sglang", {1: 32}), ("vllm", {0: 1, 1: 32})):
        rep = make_replica(make_requests(2, [16, 32], [8, 8]), num_blocks=64, policy=policy)
        arrive(rep, 0)
        step(rep)
        arrive(rep, 1)
        assert step(rep).num_scheduled_tokens == first, policy
        assert step(rep).num_scheduled_tokens == {0: 1, 1: 1}, policy


def test_sglang_keeps_room_for_the_outputs_of_running_requests() -> None:
    """Block size 1 (SGLang's page size), 1,100 tokens of KV. Request 0 (100-token prompt, 1,000 outputs)
    needs 100 + 1,000 to be admitted, and after its prefill holds 100 tokens with 999 outputs to go (its
    decode waits while the next prefill runs); a request of P prompt tokens and 50 outputs must fit beside
    0.098 x 999 = 97.9 tokens held for request 0's outputs: P + 50 + 97.9 <= 1,000, so P = 852 is admitted
    and P = 853 waits (vLLM, which holds nothing back, would admit up to 1,000)."""
    assert get_engine("sglang").scheduler_options["new_token_ratio"] == 0.098
    for prompt, admitted in ((852, True), (853, False)):
        rep = make_replica(make_requests(2, [100, prompt], [1000, 50]), num_blocks=1100, policy="sglang",
                           block_size=1)
        arrive(rep, 0)
        step(rep)
        arrive(rep, 1)
        assert (1 in step(rep).num_scheduled_tokens) is admitted, prompt


def test_sglang_retracts_the_request_that_generated_least_longest_prompt_first() -> None:
    """Out of KV, SGLang retracts the running request with the fewest outputs, the longest prompt on ties
    (schedule_batch.py retract_decode); vLLM preempts the last admitted. Request 0 (64-token prompt, chunked
    48 + 16 under a 48-token budget) and request 1 (16 tokens, admitted in the second step) sample their
    first tokens together; when both need a block and one is free, request 0 goes."""
    rep = make_replica(make_requests(2, [64, 16], [40, 40]), num_blocks=8, policy="sglang",
                       max_num_batched_tokens=48)
    arrive(rep, 0, 1)
    plans = [step(rep) for _ in range(20)]
    assert [p.preempted for p in plans if p.preempted] [0] == (0,)
    vllm = make_replica(make_requests(2, [64, 16], [40, 40]), num_blocks=8, max_num_batched_tokens=48)
    arrive(vllm, 0, 1)
    assert [p.preempted for p in (step(vllm) for _ in range(20)) if p.preempted][0] == (1,)


def test_ttft_and_e2e_include_the_api_servers_time_and_steps_do_not() -> None:
    """vLLM's 10 ms per request outside the engine loop (PR #54628) moves TTFT and E2E by exactly that much
    and leaves the steps (TPOT, makespan) as they were."""
    import numpy as np

    from inferplan.api import build_deployment
    from inferplan.sim.cluster import Cluster
    from inferplan.sim.loop import simulate
    from inferplan.sim.summary import summarize
    from inferplan.workload.request import Workload

    wl = Workload.build(np.zeros(1), [500], [20])
    dep = build_deployment("llama-3.1-8b", "h100-sxm")
    assert get_engine("vllm").overhead_on("datacenter-gpu").request_s == 0.010
    without = build_deployment("llama-3.1-8b", "h100-sxm",
                               profile=dep.device_profile.model_copy(update={"request_overhead_s": 0.0}))
    a, b = (summarize(simulate(wl, Cluster.replicas([d]))) for d in (dep, without))
    assert a.ttft_s.p50 is not None and b.ttft_s.p50 is not None and a.e2e_s.p50 is not None
    assert a.ttft_s.p50 - b.ttft_s.p50 == pytest.approx(0.010) and a.e2e_s.p50 - b.e2e_s.p50 == pytest.approx(0.010)
    assert a.tpot_s.p50 == pytest.approx(b.tpot_s.p50) and a.makespan_s == pytest.approx(b.makespan_s)
