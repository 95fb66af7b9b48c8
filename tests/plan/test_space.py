"""The search space: memory pruning, quality budget, pipeline stages only when one node is not enough."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields, replace
from pathlib import Path

import numpy as np

from inferplan.api import build_deployment
from inferplan.perf.deployment import Deployment
from inferplan.perf.memory import plan_memory
from inferplan.perf.profile import DeviceProfile
from inferplan.perf.resolve import resolve_speculation
from inferplan.plan.analytic import estimate, screen
from inferplan.plan.capacity import Bucket, CapacityJob, capacity
from inferplan.plan.space import Candidate, QualityBudget, SearchSpace, enumerate_candidates
from inferplan.sim.slo import parse_slos
from inferplan.specs.catalog import get_kv_format, get_model
from inferplan.specs.kv_eviction import KVBudget
from inferplan.store import Registry


def _space(devices: Sequence[str]) -> SearchSpace:
    return SearchSpace(devices=tuple(devices))


def test_every_candidate_fits() -> None:
    for cand, dep in enumerate_candidates(get_model("qwen3-32b"), _space(("l4", "a100-80gb")), QualityBudget(None),
                                          context_tokens=8192):
        assert plan_memory(dep).fits and dep.tp == cand.tp


def test_quality_budget_excludes_lossy_and_unknown_formats() -> None:
    """At 1%: fp8/int8 weights stay, int4 (2.4%) goes, fp8 KV (0.15%, SGLang PR #21601) stays; at 0.1% only the
    16-bit formats are left. A format of unknown effect goes unless allowed."""
    def kinds(budget: QualityBudget) -> tuple[set[str], set[str]]:
        cands = [c for c, _ in enumerate_candidates(get_model("llama-3.1-8b"), _space(("h100-sxm",)), budget,
                                                    context_tokens=4096)]
        return {c.weights for c in cands}, {c.kv for c in cands}

    assert kinds(QualityBudget(1.0)) == ({"bf16", "fp16", "fp8", "int8"}, {"bf16", "fp8"})
    assert kinds(QualityBudget(0.1)) == ({"bf16", "fp16"}, {"bf16"})
    unknown = get_kv_format("fp8").model_copy(update={"quality": None})
    assert not QualityBudget(1.0).allows(unknown) and QualityBudget(1.0, allow_unknown=True).allows(unknown)


def test_pipeline_stages_when_no_node_holds_the_model() -> None:
    """Llama-3.1-405B in 16-bit (812 GB) exceeds 8x H100: the space adds two-node pipelines; fp8 fits one node."""
    bf16 = [c for c, _ in enumerate_candidates(get_model("llama-3.1-405b"), _space(("h100-sxm",)), QualityBudget(0.0),
                                               context_tokens=4096)]
    assert bf16 and all(c.pp == 2 and c.tp == 8 for c in bf16)
    fp8 = [c for c, _ in enumerate_candidates(get_model("llama-3.1-405b"), _space(("h100-sxm",)), QualityBudget(1.0),
                                              context_tokens=4096)]
    assert fp8 and all(c.pp == 1 for c in fp8)


def test_a_profile_applies_to_the_device_it_names_only() -> None:
    slow = DeviceProfile(device="l4", matmul_efficiency=0.2, step_overhead_s=0.05, source="calibrated (test)")
    for cand, dep in enumerate_candidates(get_model("llama-3.1-8b"), _space(("l4", "h100-sxm")), QualityBudget(1.0),
                                          context_tokens=4096, profile=slow):
        if cand.device == "l4":
            assert dep.device_profile is slow
        else:
            # the shipped profile of H100s under vLLM: the fitted datacenter-GPU entry (catalog/profiles.yaml)
            assert dep.device_profile.source.startswith("fitted by `inferplan accuracy --fit`")


def test_capacity_cache_is_keyed_by_the_profile(tmp_path: Path) -> None:
    """A recalibrated profile must not reuse capacities measured with the old one."""
    reg = Registry(tmp_path / "r.sqlite")
    bucket = Bucket("all", np.full(50, 256), np.full(50, 64), 1.0)
    slos = parse_slos("ttft_p90=2s,tpot_p90=50ms")
    fast = build_deployment("llama-3.2-1b", "l4")
    slow = replace(fast, profile=DeviceProfile(device="l4", step_overhead_s=0.08, source="slow host"))
    a = capacity(CapacityJob(dep=fast, bucket=bucket, slos=slos, guess=5.0, num_requests=50), cache=reg)
    b = capacity(CapacityJob(dep=slow, bucket=bucket, slos=slos, guess=5.0, num_requests=50), cache=reg)
    assert a > 0 and b == 0  # 80 ms per step can never meet TPOT p90 50 ms; the cached answer would say it does


def test_moe_candidates_include_expert_splits_and_dense_ones_do_not() -> None:
    budget = QualityBudget()
    moe = {(c.tp, c.moe_split) for c, _ in enumerate_candidates(get_model("deepseek-v2-lite"), _space(["h100-sxm"]),
                                                                 budget, context_tokens=4096)}
    assert {(4, "tp"), (4, "ep"), (4, "dp-attention"), (1, "tp")} <= moe
    assert (1, "ep") not in moe
    dense = {c.moe_split for c, _ in enumerate_candidates(get_model("llama-3.1-8b"), _space(["h100-sxm"]), budget,
                                                          context_tokens=4096)}
    assert dense == {"tp"}


def test_analytic_screen_prefers_dp_attention_for_an_mla_model_under_load() -> None:
    """DeepSeek-V2-Lite's latent KV is replicated on every TP rank; DP attention keeps one copy per
    sequence, so a TP4 replica's batch (and rate at a loose TPOT) is far below DP4-attention's."""
    from inferplan.api import EngineLimits
    from inferplan.plan.analytic import estimate

    slos = parse_slos("ttft_p90=10s,tpot_p90=150ms")
    # the same 1024 sequences in flight allowed to both: only the KV cache differs
    tp = build_deployment("deepseek-v2-lite", "h100-sxm", tp=4, limits=EngineLimits(max_num_seqs=1024))
    dpa = build_deployment("deepseek-v2-lite", "h100-sxm", tp=4, dp_attention=True,
                           limits=EngineLimits(max_num_seqs=256))
    est_tp, est_dpa = estimate(tp, 8000, 2000, slos), estimate(dpa, 8000, 2000, slos)
    assert est_tp.batch < 300 < est_dpa.batch
    assert est_dpa.rate_per_s > 1.5 * est_tp.rate_per_s


def test_the_screen_shares_step_costs_without_changing_any_estimate() -> None:
    """One StepCost per configuration, reused for its engine-limit variants, gives exactly the estimates
    that building one per candidate gives."""
    slos = parse_slos("ttft_p90=2s,tpot_p90=100ms")
    cands = list(enumerate_candidates(get_model("qwen3-30b-a3b"), _space(("h100-sxm", "l40s")), QualityBudget(),
                                      context_tokens=8192))
    assert len(cands) > 8
    shared = [e for _, _, e in screen(cands, 1500, 300, slos)]
    assert shared == [estimate(d, 1500, 300, slos) for _, d in cands]


def test_the_capacity_key_changes_with_every_field_of_the_search() -> None:
    """Change each Deployment field and each field of the job: every change gives a new key, so no changed
    replica reuses a cached capacity. A field added to Deployment or CapacityJob fails here until it is varied
    (or, for the job, listed in NOT_IN_KEY with its reason)."""
    base = build_deployment("qwen3-30b-a3b", "h100-sxm", tp=2)
    bucket = Bucket("all", np.full(50, 256), np.full(50, 64), 1.0)
    job = CapacityJob(dep=base, bucket=bucket, slos=parse_slos("ttft_p90=2s,tpot_p90=50ms"), guess=1.0,
                      num_requests=50)
    varied = {
        "model": replace(base, model=replace(base.model, max_position_embeddings=4096)),
        "device": replace(base, device=base.device.model_copy(update={"memory_bw_gb_s": 3000.0})),
        "weights": build_deployment("qwen3-30b-a3b", "h100-sxm", tp=2, weights="fp8"),
        "kv": build_deployment("qwen3-30b-a3b", "h100-sxm", tp=2, kv="fp8"),
        "tp": build_deployment("qwen3-30b-a3b", "h100-sxm", tp=4),
        "pp": build_deployment("qwen3-30b-a3b", "h100-sxm", tp=2, pp=2),
        "limits": replace(base, limits=replace(base.limits, max_num_seqs=128)),
        "profile": replace(base, profile=base.device_profile.model_copy(update={"step_overhead_s": 0.01})),
        "ep": build_deployment("qwen3-30b-a3b", "h100-sxm", tp=2, ep=True),
        "dp_attention": build_deployment("qwen3-30b-a3b", "h100-sxm", tp=2, dp_attention=True),
        "engine": build_deployment("qwen3-30b-a3b", "h100-sxm", tp=2, engine="sglang"),
        "speculation": replace(base, speculation=resolve_speculation("ngram")),
        "kv_budget": replace(base, kv_budget=KVBudget("keydiff", 8192)),
    }
    assert set(varied) == {f.name for f in fields(Deployment) if f.init}
    varied["speculation-k"] = replace(base, speculation=resolve_speculation("ngram", k=2))
    varied["speculation-rate"] = replace(base, speculation=resolve_speculation("ngram", acceptance=0.5))
    varied["kv_budget-tokens"] = replace(base, kv_budget=KVBudget("keydiff", 4096))
    keys = {"base": job.key()} | {name: replace(job, dep=dep).key() for name, dep in varied.items()}
    long = np.full(2501, 256)
    keys["bucket"] = replace(job, bucket=Bucket("all", long, np.full(2501, 64), 1.0)).key()
    long[-1] = 300  # the last request alone differs: every length is part of the key
    keys["bucket-tail"] = replace(job, bucket=Bucket("all", long, np.full(2501, 64), 1.0)).key()
    jobs = {"slos": replace(job, slos=parse_slos("ttft_p90=1s")), "num_requests": replace(job, num_requests=60),
            "seed": replace(job, seed=1), "iterations": replace(job, iterations=7), "unit": replace(job, unit=(1, 1)),
            "prefill_dep": replace(job, prefill_dep=varied["tp"])}
    assert set(jobs) | {"dep", "bucket"} | set(CapacityJob.NOT_IN_KEY) == {f.name for f in fields(CapacityJob)}
    keys |= {name: j.key() for name, j in jobs.items()}
    assert len(set(keys.values())) == len(keys), keys
    assert job.key() == keys["base"] and replace(job, guess=9.0).key() == job.key()


def test_candidate_describes_every_labelled_axis_and_omits_a_quiet_default() -> None:
    c = Candidate(device="h100-sxm", tp=2, weights="fp8", kv="bf16", max_num_seqs=64, max_num_batched_tokens=2048)
    assert c.describe() == ("2x h100-sxm (TP2), weights fp8, KV bf16, max_num_seqs 64, "
                            "max_num_batched_tokens 2048")
    assert replace(c, engine="sglang").describe() == ("2x h100-sxm (TP2), engine sglang, weights fp8, KV bf16, "
                                                       "max_num_seqs 64, max_num_batched_tokens 2048")


def test_every_engine_of_the_space_is_a_candidate() -> None:
    space = SearchSpace(devices=("h100-sxm",), engines=("vllm", "trtllm"))
    cands = [c for c, _ in enumerate_candidates(get_model("llama-3.1-8b"), space, QualityBudget(1.0),
                                                context_tokens=4096)]
    assert {c.engine for c in cands} == {"vllm", "trtllm"}
    assert {d.serving_engine.name for _, d in enumerate_candidates(get_model("llama-3.1-8b"), space, QualityBudget(1.0),
                                                                   context_tokens=4096)} == {"vllm", "trtllm"}
    # TensorRT-LLM loads what vLLM loads but the int8 (compressed-tensors) checkpoints
    vllm_count = sum(1 for c in cands if c.engine == "vllm")
    assert sum(1 for c in cands if c.engine == "trtllm") == vllm_count - sum(
        1 for c in cands if c.engine == "vllm" and c.weights == "int8")
