"""The planner and speculative decoding: searched beside off, chosen where it lowers cost, left off where it
does not pay, and written into the launch files exactly as simulated."""

from __future__ import annotations

import pytest

from inferplan.errors import InputError
from inferplan.plan.search import PlanRequest, PlanResult, plan
from inferplan.plan.speculation import SEARCHED_K, speculation_options
from inferplan.specs.catalog import get_model


def _plan(**given: object) -> PlanResult:
    return plan(PlanRequest(model="llama-3.1-8b", devices=("h100-sxm",), probe_requests=200, executor="serial",
                            **given))  # type: ignore[arg-type]


def _chosen(r: PlanResult) -> list[str]:
    return [t.label() for t, n in zip(r.types, r.fleet.replicas, strict=True) if n]


def test_auto_searches_each_drafter_the_model_has_and_off() -> None:
    """Llama-3.1-8B: public EAGLE and EAGLE-3 heads and n-gram lookup (no MTP layers, no draft model given);
    DeepSeek-V3: its own MTP layer too. k is searched unless given."""
    options = speculation_options(get_model("llama-3.1-8b"), "auto")
    assert options[0] is None
    assert {(s.method.name, s.k) for s in options[1:]} == {(m, k) for m in ("eagle3", "eagle", "ngram")
                                                          for k in SEARCHED_K}
    mtp = speculation_options(get_model("deepseek-v3"), "auto", k=1)
    assert "mtp" in {s.method.name for s in mtp[1:]}
    assert speculation_options(get_model("llama-3.1-8b"), "off") == (None,)
    with pytest.raises(InputError, match="no EAGLE-3 draft head is known for qwen3-8b"):
        speculation_options(get_model("qwen3-8b"), "eagle3")
    with pytest.raises(InputError, match="--spec must be one of off, auto"):
        speculation_options(get_model("llama-3.1-8b"), "medusa")
    with pytest.raises(InputError, match="need --spec METHOD"):
        speculation_options(get_model("llama-3.1-8b"), "off", k=3)


def test_a_tight_tpot_at_low_load_is_met_on_fewer_gpus_with_speculation() -> None:
    """TPOT p90 4.5 ms at 4 req/s of chat: without speculation one H100 cannot decode fast enough and the plan
    takes TP2; with EAGLE-3 (~2.5 tokens per step) one H100 meets it: half the cost."""
    slo = "ttft_p90=1s,tpot_p90=4.5ms"
    off = _plan(workload="chat", rate=4, num_requests=600, slo=slo)
    auto = _plan(workload="chat", rate=4, num_requests=600, slo=slo, spec="auto")
    assert off.verified and auto.verified
    assert auto.fleet.cost_per_hour < off.fleet.cost_per_hour
    assert all("speculative eagle3" in label for label in _chosen(auto)), _chosen(auto)
    assert auto.summary.slos_met


def test_at_high_load_with_a_loose_tpot_speculation_is_left_off() -> None:
    """60 req/s of short-prompt chat with TPOT 200 ms allowed: batches are large and compute-bound, so the
    k + 1 tokens each sequence verifies cost more than the accepted ones save; the plan runs without it."""
    r = _plan(workload="chat", rate=60, num_requests=3000, slo="ttft_p90=3s,tpot_p90=200ms", spec="auto",
              max_input_tokens=128)
    assert r.verified
    assert not any("speculative" in label for label in _chosen(r)), _chosen(r)
    assert any(e.candidate.spec != "off" for e in r.screened)  # it was searched
