"""Session workloads: prompts that grow by each response and message, chains that name the shared content,
the asked rate in the steady state, and an engine that reuses a session's earlier turns from its cache."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from inferplan.api import build_deployment
from inferplan.errors import InputError
from inferplan.perf.deployment import EngineLimits
from inferplan.runs import SimulationConfig, simulate_config
from inferplan.sim.cluster import Cluster
from inferplan.sim.loop import simulate
from inferplan.workload.presets import make_workload
from inferplan.workload.request import Workload
from inferplan.workload.sessions import CHAIN_TOKENS, SESSION_PRESETS


@pytest.mark.parametrize("preset", sorted(SESSION_PRESETS))
def test_turns_grow_by_the_response_and_share_the_earlier_chain(preset: str) -> None:
    wl = make_workload(preset, num_requests=3000, seed=3)
    assert len(wl) == 3000 and wl.prefix_chain is not None
    shape = SESSION_PRESETS[preset]
    for s in np.unique(wl.session_id)[:200].tolist():
        turns = np.nonzero(wl.session_id == s)[0]
        for a, b in zip(turns[:-1].tolist(), turns[1:].tolist(), strict=True):
            assert wl.arrival_s[b] >= wl.arrival_s[a]
            assert wl.input_tokens[b] > wl.input_tokens[a] + wl.output_tokens[a]  # plus a new message
            chain_a, chain_b = wl.prefix_chain[a], wl.prefix_chain[b]
            assert chain_b[: len(chain_a)] == chain_a  # the earlier turn and its response, the same content
            assert len(chain_a) == (wl.input_tokens[a] + wl.output_tokens[a]) // CHAIN_TOKENS
    assert (wl.input_tokens + wl.output_tokens <= shape.max_context).all()
    shared = shape.system_tokens // CHAIN_TOKENS
    firsts = {c[:shared] for c in wl.prefix_chain if len(c) >= shared}
    assert len(firsts) == 1  # every session's system prompt is the same content


@pytest.mark.parametrize("preset", sorted(SESSION_PRESETS))
def test_sessions_arrive_at_the_asked_rate_from_the_first_second(preset: str) -> None:
    """Sessions started before time 0 are under way when the run begins: the rate holds over the whole run,
    not only once the first sessions have reached later turns."""
    rate = SESSION_PRESETS[preset].rate * 4
    wl = make_workload(preset, rate=rate, num_requests=4000, seed=1)
    assert wl.mean_rate == pytest.approx(rate, rel=0.15)
    first_half = np.count_nonzero(wl.arrival_s < wl.duration_s / 2)
    assert first_half == pytest.approx(2000, rel=0.15)


def test_fixed_turns_and_think_time() -> None:
    wl = make_workload("multi-turn", num_requests=2000, session_turns=1, seed=0)
    assert len(np.unique(wl.session_id)) == 2000  # one turn each: no session repeats
    with pytest.raises(InputError, match="--think-time must be 0 or more"):
        make_workload("multi-turn", think_time_s=-1)
    with pytest.raises(InputError, match="shape session presets"):
        make_workload("chat", session_turns=3)


def test_a_sessions_next_turn_hits_its_prompt_and_its_response_in_the_cache() -> None:
    """Turn 1: a 640-token prompt and 320 outputs; turn 2 resends both and 64 new tokens (1,024). The engine
    cached turn 1's 40 prompt blocks and the 19 full blocks of its outputs (tokens 640-943; the last output's
    KV is never computed), so turn 2 finds 59 blocks = 944 tokens; prompt blocks alone would give 640."""
    chain1 = tuple(range((640 + 320) // CHAIN_TOKENS))
    chain2 = tuple(range((1024 + 8) // CHAIN_TOKENS))
    wl = Workload.build([0.0, 30.0], [640, 1024], [320, 8], session_id=[0, 0], prefix_chain=(chain1, chain2),
                        chain_block_tokens=CHAIN_TOKENS, chain_covers_outputs=True)
    dep = build_deployment("llama-3.1-8b", "h100-sxm", limits=EngineLimits(enable_prefix_caching=True))
    res = simulate(wl, Cluster.replicas([dep]))
    assert res.table.prefix_hit_tokens.tolist() == [0, 944]
    prompts_only = replace(wl, chain_covers_outputs=False)  # a trace's chain names prompts only
    assert simulate(prompts_only, Cluster.replicas([dep])).table.prefix_hit_tokens.tolist() == [0, 640]


def test_affinity_routing_keeps_an_agents_context_in_one_cache() -> None:
    """Coding-agent sessions on two H100s with prefix caching: sending a session's calls to one replica
    reuses its growing context (the agent traces report ~97% of input tokens as cached prefix with an
    unbounded cache); spreading them round-robin finds each context on the other replica half the time."""
    def run(router: str) -> tuple[float, float]:
        cfg = SimulationConfig(model="llama-3.1-8b", device="h100-sxm", workload="agentic", rate=0.5,
                               num_requests=300, replicas=2, router=router, enable_prefix_caching=True)
        res, summary = simulate_config(cfg)
        return float(res.table.prefix_hit_tokens.sum() / res.table.input.sum()), summary.ttft_s.p90

    affinity, spread = run("session-affinity"), run("round-robin")
    assert affinity[0] > 0.8 and affinity[0] > spread[0] + 0.1
    assert affinity[1] < spread[1]
