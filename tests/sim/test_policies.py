"""Scheduler unit tests written like an engine's own: make requests, call schedule(), assert on the plan."""

from __future__ import annotations

import numpy as np

from inferplan.sim.policies.base import StepPlan
from inferplan.sim.replica import Replica
from tests.conftest import make_replica, make_requests


def arrive(rep: Replica, *rids: int) -> None:
    for rid in rids:
        rep.enqueue(rid)


def step(rep: Replica, now: float = 1.0) -> StepPlan:
    """Schedule one step and apply it at ``now``."""
    plan = rep.policy.schedule(rep.state)
    rep.plan = plan
    if not plan.is_empty:
        rep.finish_step(now)
    return plan


def test_budget_is_never_exceeded() -> None:
    """Three 1,000-token prompts under a 1,500-token budget: 1,000 + 500 this step."""
    rep = make_replica(make_requests(3, 1000, 5), num_blocks=1000, max_num_batched_tokens=1500)
    arrive(rep, 0, 1, 2)
    plan = step(rep)
    assert plan.num_scheduled_tokens == {0: 1000, 1: 500}
    assert plan.total_tokens <= 1500


def test_long_prompt_is_chunked_across_steps() -> None:
    """A 2,500-token prompt under a 1,000-token budget takes three steps, then decodes."""
    rep = make_replica(make_requests(1, 2500, 3), num_blocks=1000, max_num_batched_tokens=1000)
    arrive(rep, 0)
    assert [step(rep).num_scheduled_tokens[0] for _ in range(4)] == [1000, 1000, 500, 1]
    assert rep.table.out_done[0] == 0 and rep.state.batch.remaining[0] == 1  # 2 outputs so far of 3


def test_running_requests_go_before_waiting_ones() -> None:
    """Decodes of running requests are scheduled before a new prompt, which gets the rest of the budget."""
    rep = make_replica(make_requests(3, 100, 10), num_blocks=1000, max_num_batched_tokens=150)
    arrive(rep, 0)
    step(rep)
    arrive(rep, 1)
    plan = step(rep)
    assert plan.num_scheduled_tokens == {0: 1, 1: 100}
    arrive(rep, 2)
    plan = step(rep)
    assert list(plan.num_scheduled_tokens.items())[:2] == [(0, 1), (1, 1)]
    assert plan.num_scheduled_tokens[2] == 100


def test_max_num_seqs_caps_running_requests() -> None:
    """With max_num_seqs=2, the third request waits."""
    rep = make_replica(make_requests(3, 10, 10), num_blocks=100, max_num_seqs=2)
    arrive(rep, 0, 1, 2)
    plan = step(rep)
    assert set(plan.num_scheduled_tokens) == {0, 1}
    assert len(rep.state.waiting) == 1


def test_preemption_picks_last_admitted_and_requeues_at_head() -> None:
    """Out of blocks: the last admitted request is preempted, its computed tokens reset, queued first."""
    # block size 16; two requests of 16-token prompts hold 1 block each; 3 blocks in all.
    rep = make_replica(make_requests(3, 16, 20), num_blocks=3)
    arrive(rep, 0, 1)
    step(rep)  # both prefill, 1 block each, first tokens sampled (17 tokens each now)
    arrive(rep, 2)
    plan = step(rep)  # request 0 needs a 2nd block (free: 1) -> gets it; request 1 needs one -> preempt 1 itself
    assert plan.preempted == (1,)
    assert plan.num_scheduled_tokens == {0: 1}
    assert rep.state.waiting.peek() == 1  # back at the head, ahead of request 2
    assert rep.table.num_preemptions[1] == 1
    assert 1 not in rep.state.batch.rid[: rep.state.batch.n]


def test_no_admission_in_a_step_that_preempted() -> None:
    """Waiting requests are not admitted in a step with a preemption, even if budget remains."""
    rep = make_replica(make_requests(3, 16, 20), num_blocks=3)
    arrive(rep, 0, 1)
    step(rep)
    arrive(rep, 2)
    plan = step(rep)
    assert plan.preempted and 2 not in plan.num_scheduled_tokens


def test_preempted_request_recomputes_prompt_and_outputs() -> None:
    """On resume, a preempted request recomputes its prompt and the tokens it generated."""
    rep = make_replica(make_requests(2, 16, 20), num_blocks=3)
    arrive(rep, 0, 1)
    step(rep)
    plan = step(rep)
    assert plan.preempted == (1,)
    # request 0 finishes eventually, freeing blocks; run until request 1 is scheduled again
    for _ in range(200):
        plan = step(rep)
        if 1 in plan.num_scheduled_tokens:
            break
    assert plan.num_scheduled_tokens[1] == 16 + 1  # prompt + the one token it had generated


def test_head_of_line_blocking() -> None:
    """A waiting request whose blocks do not fit blocks those behind it, even small ones."""
    rep = make_replica(make_requests(3, [16, 200, 16], 100), num_blocks=10)
    arrive(rep, 0)
    step(rep)
    arrive(rep, 1, 2)
    plan = step(rep)  # request 1 needs 13 blocks, only 9 free: admission stops; 2 (1 block) must wait
    assert plan.num_scheduled_tokens == {0: 1}
    assert len(rep.state.waiting) == 2 and rep.state.waiting.peek() == 1


def test_chunked_prefill_off_waits_for_budget() -> None:
    """Without chunked prefill, a prompt over the remaining budget ends admission for the step."""
    rep = make_replica(make_requests(2, [600, 600], 5), num_blocks=1000, max_num_batched_tokens=1000, chunked=False)
    arrive(rep, 0, 1)
    plan = step(rep)
    assert plan.num_scheduled_tokens == {0: 600}


def test_prefix_cache_hit_skips_compute_except_last_token() -> None:
    """A second request with the same 64-token prompt computes only its last token."""
    wl = make_requests(2, 64, 4, prefix_group=[7, 7], prefix_tokens=[64, 64])
    rep = make_replica(wl, num_blocks=100, prefix_caching=True)
    arrive(rep, 0)
    step(rep)
    arrive(rep, 1)
    plan = step(rep)
    # 64 tokens = 4 full blocks, but the last token is always recomputed: 3 blocks hit (48 tokens)
    assert plan.num_scheduled_tokens[1] == 64 - 48
    assert rep.table.prefix_hit_tokens[1] == 48


def test_prefix_cache_reuses_freed_blocks_lru() -> None:
    """After the first request finishes, its cached blocks still serve a later request."""
    wl = make_requests(2, 64, 1, prefix_group=[3, 3], prefix_tokens=[64, 64])
    rep = make_replica(wl, num_blocks=100, prefix_caching=True)
    arrive(rep, 0)
    step(rep)  # output 1: finishes immediately, blocks freed but cached
    assert rep.state.batch.n == 0
    arrive(rep, 1)
    plan = step(rep)
    assert plan.num_scheduled_tokens[1] == 16


def test_distinct_prefixes_do_not_hit() -> None:
    """Different prefix groups share nothing."""
    wl = make_requests(2, 64, 4, prefix_group=[1, 2], prefix_tokens=[64, 64])
    rep = make_replica(wl, num_blocks=100, prefix_caching=True)
    arrive(rep, 0)
    step(rep)
    arrive(rep, 1)
    assert step(rep).num_scheduled_tokens[1] == 64


def test_sarathi_budget_is_the_chunk_size() -> None:
    """Sarathi: a step carries at most --chunk-size tokens."""
    rep = make_replica(make_requests(2, 1000, 5), num_blocks=1000, policy="sarathi", options={"chunk_size": 256})
    arrive(rep, 0, 1)
    assert step(rep).num_scheduled_tokens == {0: 256}


def test_orca_reserves_kv_for_the_whole_request() -> None:
    """Orca admits only if prompt + all outputs fit, so it never preempts."""
    rep = make_replica(make_requests(2, 16, 64), num_blocks=6, policy="orca")
    arrive(rep, 0, 1)
    plan = step(rep)
    assert plan.num_scheduled_tokens == {0: 16}  # 80 tokens = 5 blocks; the second does not fit
    assert rep.state.batch.held[0] == 5


def test_static_batching_waits_for_the_whole_batch() -> None:
    """Static batching admits nothing new until the running batch has finished."""
    rep = make_replica(make_requests(3, 16, [2, 10, 3]), num_blocks=100, policy="static", max_num_seqs=2)
    arrive(rep, 0, 1)
    step(rep)
    arrive(rep, 2)
    for _ in range(3):
        plan = step(rep)
        assert 2 not in plan.num_scheduled_tokens
    while rep.state.batch.n:
        step(rep)
    assert step(rep).num_scheduled_tokens == {2: 16}


def test_llamacpp_rejects_requests_longer_than_a_slot() -> None:
    """llama.cpp splits -c across -np slots; a request longer than a slot cannot run."""
    rep = make_replica(make_requests(2, [1000, 5000], 100), num_blocks=10_000, policy="llamacpp",
                       options={"parallel": 4, "ctx_size": 16384})
    assert rep.reject_reason(0) == 0
    assert rep.reject_reason(1) == 3
    assert rep.state.max_num_seqs == 4


def test_request_longer_than_the_cache_is_rejected() -> None:
    """A request that can never fit the KV cache is rejected, not left waiting forever."""
    rep = make_replica(make_requests(1, 1000, 100), num_blocks=10)
    assert rep.reject_reason(0) == 2


def test_step_plan_is_a_snapshot() -> None:
    """Applying a plan does not change the plan's numbers."""
    rep = make_replica(make_requests(1, 32, 3), num_blocks=10)
    arrive(rep, 0)
    plan = step(rep)
    assert plan.num_scheduled_tokens == {0: 32}
    assert np.array_equal(plan.num_computed_before, [0])
