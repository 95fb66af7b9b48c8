"""Expert parallelism and data-parallel attention for MoE models: memory, step cost, validation."""

from __future__ import annotations

import math

import pytest

from inferplan.api import EngineLimits, build_deployment
from inferplan.errors import InputError
from inferplan.perf.memory import max_context, plan_memory
from inferplan.perf.order_stats import expected_max_standard_normal
from inferplan.perf.step_cost import BatchShape, StepCost
from inferplan.specs.catalog import get_model


def test_routed_expert_parameters_match_hand_counts() -> None:
    # DeepSeek-V2-Lite: 26 MoE layers (the first is dense) x 64 experts x 3 x 2048 x 1408
    assert get_model("deepseek-v2-lite").params_routed_experts == 26 * 64 * 3 * 2048 * 1408
    # Mixtral-8x7B: 32 layers x 8 experts x 3 x 4096 x 14336
    assert get_model("mixtral-8x7b").params_routed_experts == 32 * 8 * 3 * 4096 * 14336
    assert get_model("llama-3.1-8b").params_routed_experts == 0


def test_expected_max_of_normals_matches_closed_form_and_tables() -> None:
    assert expected_max_standard_normal(1) == 0.0
    assert expected_max_standard_normal(2) == pytest.approx(1 / math.sqrt(math.pi), abs=1e-4)
    assert expected_max_standard_normal(8) == pytest.approx(1.4236, abs=1e-3)  # tabulated order statistics


def test_expert_parallel_keeps_weight_memory_and_data_parallel_attention_replicates_the_rest() -> None:
    tp4 = plan_memory(build_deployment("deepseek-v2-lite", "h100-sxm", tp=4))
    ep4 = plan_memory(build_deployment("deepseek-v2-lite", "h100-sxm", tp=4, ep=True))
    dpa = build_deployment("deepseek-v2-lite", "h100-sxm", tp=4, dp_attention=True)
    assert ep4.weights_bytes == tp4.weights_bytes
    m = dpa.model
    embed = m.embedding_params + m.lm_head_params
    routed = m.params_routed_experts
    expected = (m.params_total - embed - routed) * 2 + embed * 2 + routed * 2 / 4  # bf16
    assert plan_memory(dpa).weights_bytes == pytest.approx(expected)


def test_data_parallel_attention_multiplies_the_kv_cache_of_an_mla_model() -> None:
    # MLA's latent KV cannot be split by heads: under TP4 every rank holds all of it
    tp4 = plan_memory(build_deployment("deepseek-v2-lite", "h100-sxm", tp=4))
    dep = build_deployment("deepseek-v2-lite", "h100-sxm", tp=4, dp_attention=True)
    dpa = plan_memory(dep)
    assert dpa.num_kv_blocks > 3.5 * tp4.num_kv_blocks
    assert dpa.num_kv_blocks % 4 == 0
    # one sequence lives on one rank
    assert max_context(dep, dpa) <= dpa.num_kv_blocks // 4 * dep.limits.block_size


def test_expert_parallel_decode_of_one_token_waits_for_the_busiest_device() -> None:
    """Mixtral on 4 devices, one token choosing 2 of 8 experts: TP reads a quarter of both,
    EP's busiest device reads whole experts. Normal approximation, by hand:
    local experts 2, p = 0.25, busiest = 0.5 + E[max of 4] * sqrt(2 * 0.25 * 0.75)."""
    shape = BatchShape.decodes(1, 2048)
    tp = StepCost(build_deployment("mixtral-8x7b", "h100-sxm", tp=4)).groups(shape)[1]
    ep = StepCost(build_deployment("mixtral-8x7b", "h100-sxm", tp=4, ep=True)).groups(shape)[1]
    busiest = 0.5 + expected_max_standard_normal(4) * math.sqrt(2 * 0.25 * 0.75)
    assert ep / tp == pytest.approx(busiest * 4 / 2, rel=1e-9)


def test_expert_imbalance_vanishes_for_large_batches() -> None:
    shape = BatchShape.decodes(8192, 8192 * 512)
    tp = StepCost(build_deployment("qwen3-30b-a3b", "h100-sxm", tp=4)).groups(shape)[1]
    ep = StepCost(build_deployment("qwen3-30b-a3b", "h100-sxm", tp=4, ep=True)).groups(shape)[1]
    assert 1.0 <= ep / tp < 1.03


def test_data_parallel_attention_trades_all_reduces_for_all_to_all() -> None:
    tp = StepCost(build_deployment("deepseek-v2-lite", "h100-sxm", tp=4))
    dpa = StepCost(build_deployment("deepseek-v2-lite", "h100-sxm", tp=4, dp_attention=True))
    m = get_model("deepseek-v2-lite")
    dev = dpa.dep.device
    link = dev.tp_link_bytes_per_s() * dpa.dep.device_profile.link_efficiency
    a2a = 2 * 26 * 6 * m.hidden_size * 2 * (3 / 4) / 4 / link  # dispatch + combine, top-6, per token
    assert dpa.allreduce_s_per_token == pytest.approx(a2a)
    decode = BatchShape.decodes(256, 256 * 2048)
    assert dpa.groups(decode)[4] < tp.groups(decode)[4]  # communication: the all-to-alls cost less
    # a lone prompt's chunk runs on one rank: slower to prefill than under TP
    assert dpa.prefill_seconds(2048) > tp.prefill_seconds(2048)
    # a large decode batch reads a quarter of the KV per rank and wins
    assert dpa.decode_seconds(256, 2048) < tp.decode_seconds(256, 2048)


def test_group_limits_scale_per_rank_engine_limits() -> None:
    dep = build_deployment("deepseek-v2-lite", "h100-sxm", tp=4, dp_attention=True,
                           limits=EngineLimits(max_num_seqs=64, max_num_batched_tokens=2048))
    assert dep.ep and dep.dp == 4 and dep.attention_tp == 1
    assert (dep.group_limits.max_num_seqs, dep.group_limits.max_num_batched_tokens) == (256, 8192)
    assert dep.parallelism == "DP4-attention+EP4"
    assert build_deployment("qwen3-30b-a3b", "h100-sxm", tp=2, ep=True).parallelism == "TP2+EP2"


@pytest.mark.parametrize(("model", "tp", "needle"), [
    ("llama-3.1-8b", 2, "has none"),
    ("mixtral-8x7b", 1, "--tp 2 or more"),
    ("mixtral-8x7b", 3, "does not divide mixtral-8x7b's 8 experts"),
])
def test_bad_expert_parallel_requests_are_explained(model: str, tp: int, needle: str) -> None:
    with pytest.raises(InputError, match=needle):
        build_deployment(model, "h100-sxm", tp=tp, ep=True)


def test_a_sequence_longer_than_one_ranks_cache_is_rejected() -> None:
    """Under DP attention a sequence's KV lives on one rank: the pooled cache does not hold it."""
    from inferplan.sim.cluster import Cluster
    from inferplan.sim.loop import simulate
    from inferplan.sim.policies import get_policy
    from inferplan.sim.state import REJECT_REASONS
    from inferplan.workload.request import Workload

    dep = build_deployment("deepseek-v2-lite", "l40s", tp=2, dp_attention=True)
    per_rank_tokens = plan_memory(dep).num_kv_blocks // 2 * dep.limits.block_size
    wl = Workload.build([0.0, 0.1], [per_rank_tokens + 64, 1000], [16, 16])
    res = simulate(wl, Cluster.replicas([dep]), get_policy("vllm"))
    assert res.table.status.tolist() == [4, 3]  # rejected, finished
    assert REJECT_REASONS[res.table.reject_reason[0]] == "longer than the replica's KV cache"
