"""The search space: memory pruning, quality budget, pipeline stages only when one node is not enough."""

from __future__ import annotations

from inferplan.perf.memory import plan_memory
from inferplan.plan.space import QualityBudget, enumerate_candidates
from inferplan.specs.catalog import get_model


def test_every_candidate_fits() -> None:
    for cand, dep in enumerate_candidates(get_model("qwen3-32b"), ("l4", "a100-80gb"), QualityBudget(None),
                                          context_tokens=8192):
        assert plan_memory(dep).fits and dep.tp == cand.tp


def test_quality_budget_excludes_lossy_and_unknown_formats() -> None:
    """At 1%: fp8/int8 stay, int4 (2.4%) goes, fp8 KV (unknown) goes unless allowed."""
    cands = [c for c, _ in enumerate_candidates(get_model("llama-3.1-8b"), ("h100-sxm",), QualityBudget(1.0),
                                                context_tokens=4096)]
    assert {c.weights for c in cands} == {"bf16", "fp16", "fp8", "int8"} and {c.kv for c in cands} == {"bf16"}
    allowed = [c for c, _ in enumerate_candidates(get_model("llama-3.1-8b"), ("h100-sxm",),
                                                  QualityBudget(1.0, allow_unknown=True), context_tokens=4096)]
    assert "fp8" in {c.kv for c in allowed}


def test_pipeline_stages_when_no_node_holds_the_model() -> None:
    """Llama-3.1-405B in 16-bit (812 GB) exceeds 8x H100: the space adds two-node pipelines; fp8 fits one node."""
    bf16 = [c for c, _ in enumerate_candidates(get_model("llama-3.1-405b"), ("h100-sxm",), QualityBudget(0.0),
                                               context_tokens=4096)]
    assert bf16 and all(c.pp == 2 and c.tp == 8 for c in bf16)
    fp8 = [c for c, _ in enumerate_candidates(get_model("llama-3.1-405b"), ("h100-sxm",), QualityBudget(1.0),
                                              context_tokens=4096)]
    assert fp8 and all(c.pp == 1 for c in fp8)
