"""Planning online and offline work together (HyGen P140): offline buckets sized by their deadline, the fleet
run with priority scheduling, and the cost of the same classes on fleets of their own."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from inferplan.api import EngineLimits, build_deployment
from inferplan.deploy.commands import sglang_command, trtllm_command, vllm_command
from inferplan.deploy.fleet_files import write_deploy
from inferplan.errors import InputError
from inferplan.plan.analytic import estimate
from inferplan.plan.capacity import CapacityJob, capacity
from inferplan.plan.colocation import by_priority, check_deadlines, make_buckets, sides
from inferplan.plan.pools import Evaluated, ReplicaType
from inferplan.plan.search import PlanRequest, plan
from inferplan.plan.space import Candidate
from inferplan.sim.slo import parse_slos
from inferplan.workload.presets import make_workload
from tests.deploy.engine_args import parse

MIX = "chat:rate=4 + batch:count=600,deadline=5m"
SLO = "ttft_p90=1s,tpot_p90=50ms"


def test_an_offline_class_is_a_bucket_at_the_rate_that_meets_its_deadline() -> None:
    """600 requests queued at once, due within 300 s: the fleet must finish 2 req/s of them."""
    wl = make_workload(MIX, seed=1)
    buckets, bucket_of = make_buckets(wl, 3)
    online, offline = [b for b in buckets if not b.offline], [b for b in buckets if b.offline]
    assert len(online) == 3 and len(offline) == 1
    assert offline[0].name == "batch (offline)" and offline[0].rate_per_s == pytest.approx(2.0)
    assert (bucket_of[wl.class_index == 1] == 3).all() and (bucket_of[wl.class_index == 0] < 3).all()
    assert sum(b.input_tokens.shape[0] for b in online) == int((wl.class_index == 0).sum())
    # an offline bucket's capacity is not searched under the latency SLOs: its fingerprint differs
    assert offline[0].fingerprint() != type(offline[0])(offline[0].name, offline[0].input_tokens,
                                                        offline[0].output_tokens, 2.0).fingerprint()
    assert set(sides(wl)) == {"online", "offline"} and sides(make_workload("chat", num_requests=20)) == {}


def test_a_throughput_class_is_a_bucket_at_that_throughput() -> None:
    """batch at 3,000 output tokens/s at least: its bucket's rate is 3,000 over its mean output length."""
    wl = make_workload("chat:rate=4 + batch:count=600,throughput=3000", seed=1)
    offline = [b for b in make_buckets(wl, 3)[0] if b.offline]
    mean_out = float(wl.output_tokens[wl.class_index == 1].mean())
    assert offline[0].rate_per_s == pytest.approx(3000 / mean_out)


def test_offline_capacity_is_throughput_not_bounded_by_the_latency_slos() -> None:
    """With the whole class queued, one H100 finishes more requests per second than it can take at a 20 ms
    TPOT p90, where it must keep batches small."""
    wl = make_workload(MIX, seed=1)
    buckets, _ = make_buckets(wl, 1)
    dep = build_deployment("llama-3.1-8b", "h100-sxm")
    slos = parse_slos("ttft_p90=1s,tpot_p90=20ms")
    batch, chat = buckets[1], buckets[0]
    offline = capacity(CapacityJob(dep=dep, bucket=batch, slos=slos, guess=1.0, num_requests=200))
    online_like = capacity(CapacityJob(dep=dep, bucket=type(batch)("same lengths", batch.input_tokens,
                                                                     batch.output_tokens, 1.0),
                                       slos=slos, guess=1.0, num_requests=200))
    assert offline > 1.5 * online_like > 0
    assert chat.offline is False


def _replica_type(engine: str) -> ReplicaType:
    dep = build_deployment("llama-3.1-8b", "h100-sxm", engine=engine)
    cand = Candidate(device="h100-sxm", tp=1, engine=engine, weights="bf16", kv="bf16",
                     max_num_seqs=dep.limits.max_num_seqs, max_num_batched_tokens=dep.limits.max_num_batched_tokens)
    return ReplicaType(Evaluated(cand, estimate(dep, 500, 100, parse_slos(SLO))), dep)


def test_priority_scheduling_is_launched_where_the_engine_has_it() -> None:
    vllm, sglang, trt = (by_priority(_replica_type(e)).dep for e in ("vllm", "sglang", "trtllm"))
    assert vllm.limits.priority_scheduling and sglang.limits.priority_scheduling
    assert not trt.limits.priority_scheduling  # trtllm-serve schedules first come, first served
    cmd = vllm_command(vllm, context_tokens=4096)
    assert parse("vllm", cmd[2:]).scheduling_policy == "priority"
    sg = sglang_command(sglang, context_tokens=4096)
    ns = parse("sglang", sg[3:])
    assert ns.enable_priority_scheduling and ns.schedule_low_priority_values_first
    assert "--scheduling-policy" not in vllm_command(build_deployment("llama-3.1-8b", "h100-sxm"),
                                                    context_tokens=4096)
    assert "priority" not in " ".join(trtllm_command(trt, context_tokens=4096))
    # the simulator runs what is launched: a replica whose limits say priority schedules by priority
    assert EngineLimits(priority_scheduling=True).priority_scheduling


def test_an_impossible_deadline_is_refused_before_the_search() -> None:
    wl = make_workload("chat:rate=1 + batch:count=50,deadline=1s", seed=0)
    with pytest.raises(InputError, match=r"batch: deadline=1s is shorter than its longest request"):
        check_deadlines(wl, [build_deployment("llama-3.1-8b", "h100-sxm")])


def test_online_and_offline_together_cost_less_than_apart_and_meet_both(tmp_path: Path) -> None:
    """The issue's bar: chat beside a batch job on one fleet, verified by one simulation of both (the chat SLOs
    and the batch deadline), costs less than the two fleets each would need alone; the launch files run
    priority scheduling and tell clients each class's priority."""
    start = time.monotonic()
    r = plan(PlanRequest(model="llama-3.1-8b", devices=("h100-sxm", "l4"), workload=MIX, slo=SLO,
                         executor="serial", probe_requests=200))
    assert r.verified and r.summary.slos_met
    chat, batch = r.summary.classes
    assert batch.deadline_met and batch.last_finish_s is not None and batch.last_finish_s <= 300
    assert chat.slo_attainment is not None and chat.tpot_p90_s is not None and chat.tpot_p90_s <= 0.05
    assert [c.slo for c in r.summary.slos][-1] == "batch done within 5m"
    apart = r.separate["online"].cost_per_hour + r.separate["offline"].cost_per_hour
    assert r.separate["online"].verified and r.separate["offline"].verified
    assert r.separate["online"].num_requests + r.separate["offline"].num_requests == len(r.workload)
    assert r.fleet.cost_per_hour < apart
    assert any(t.dep.limits.priority_scheduling for t in r.types)
    launch = Path(write_deploy(r, tmp_path)[0]).read_text()
    assert "--scheduling-policy priority" in launch and '"priority": chat 0, batch 1' in launch
    assert np.isfinite(r.fleet.cost_per_hour) and time.monotonic() - start < 150
