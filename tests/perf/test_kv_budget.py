"""KV eviction under a token budget (KeyDiff, StreamingLLM): every layer keeps at most the budget, so memory and
attention stop growing with the context; quality is the paper's figure where it covers the model and budget."""

from __future__ import annotations

import numpy as np
import pytest

from inferplan.api import build_deployment
from inferplan.errors import InputError
from inferplan.perf.kv_layout import KVLayout
from inferplan.perf.memory import max_concurrent_sequences, plan_memory
from inferplan.perf.step_cost import StepCost
from inferplan.sim.cluster import Cluster, SimOptions
from inferplan.sim.loop import simulate
from inferplan.sim.policies import get_policy
from inferplan.sim.state import FINISHED
from inferplan.specs.kv_eviction import KVBudget
from inferplan.workload.request import Workload


def test_a_budget_caps_every_layers_pages_at_the_budget() -> None:
    """Llama-3.1-8B on one H100 with an 8,192-token KeyDiff budget: all 32 layers page as one group, a
    sequence holds at most 8192 / 16 + 1 = 513 pages, so 32K-token sequences fit 28,231 // 513 = 55 at once
    (13 without a budget: 28,231 // 2,048)."""
    dep = build_deployment("llama-3.1-8b", "h100-sxm", kv_budget="keydiff:8192")
    mem = plan_memory(dep)
    assert mem.layout == KVLayout(16, full_pages=0, sliding_pages=1, window_blocks=513, layers_per_page=32)
    assert mem.num_kv_blocks == 28_231 and mem.layout.blocks(32_768) == 513
    assert max_concurrent_sequences(dep, mem, 32_768) == 55
    plain = build_deployment("llama-3.1-8b", "h100-sxm")
    assert max_concurrent_sequences(plain, plan_memory(plain), 32_768) == 13
    cost = StepCost(dep)
    assert (cost.window, cost.full_layers, cost.sliding_layers) == (8192, 0, 32)  # attention over what is kept


def test_quality_is_the_papers_figure_only_where_it_covers_the_model_and_budget() -> None:
    """KeyDiff (P8): under 0.04% on LongBench at an 8K budget, for Llama 3.1-8B and 3.2-3B; a smaller budget,
    another model, or StreamingLLM (no task accuracy carried): unknown."""
    keydiff = KVBudget("keydiff", 8192).method_spec()
    q = keydiff.quality_for("llama-3.1-8b", 8192)
    assert q is not None and q.loss_pct == 0.04 and q.metric == "LongBench average"
    assert keydiff.quality_for("llama-3.1-8b", 4096) is None and keydiff.quality_for("qwen3-8b", 8192) is None
    assert KVBudget("streamingllm", 8192).method_spec().quality_for("llama-3.1-8b", 8192) is None


def test_long_prompts_finish_sooner_when_each_keeps_only_its_budget() -> None:
    """Twenty 30K-token prompts at once on one H100: without a budget 13 fit at a time; with KeyDiff's 8K
    budget all run together and attention reads 8K keys, so the batch ends sooner (measured: 25.3 s -> 19.4 s)."""
    def makespan(budget: str | None) -> float:
        dep = build_deployment("llama-3.1-8b", "h100-sxm", kv_budget=budget)
        res = simulate(Workload.build(np.zeros(20), [30_000] * 20, [64] * 20), Cluster.replicas([dep]),
                       get_policy("vllm"), options=SimOptions(check_invariants=True))
        assert (res.table.status == FINISHED).all()
        return res.makespan_s

    assert makespan("keydiff:8192") < 0.85 * makespan(None)


def test_bad_budgets_are_refused_with_the_fix() -> None:
    for text in ("keydiff", "lru:100", "keydiff:0", "keydiff:many"):
        with pytest.raises(InputError, match="--kv-budget must be METHOD:TOKENS"):
            KVBudget.parse(text)
    with pytest.raises(InputError, match="sliding-window layers already keep a window"):
        build_deployment("gemma-3-27b", "h100-sxm", kv_budget="keydiff:8192")


def test_fit_suggests_a_budget_with_a_published_figure_where_the_context_does_not_fit() -> None:
    """Llama-3.1-8B on one L4 cannot hold a 131,072-token sequence (16 GiB of KV); KeyDiff's 8K budget, whose
    LongBench figure covers this model, fits, and fit says so with the figure and that no engine launches it."""
    from inferplan.perf.fit import fit

    r = fit(build_deployment("llama-3.1-8b", "l4"), context=131_072)
    assert not r.fits_context
    tip = next(t for t in r.suggestions if t.startswith("--kv-budget"))
    assert tip.startswith("--kv-budget keydiff:8192 fits (0.04% worse on LongBench average")
    assert fit(build_deployment("llama-3.1-8b", "l4", kv_budget="keydiff:8192"), context=131_072).fits_context
    other = fit(build_deployment("deepseek-r1-distill-llama-8b", "l4"), context=131_072)  # no figure for it
    assert not other.fits_context and not any(t.startswith("--kv-budget") for t in other.suggestions)
