"""Simulator invariants under random workloads, determinism, and a closed form (M/D/1)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inferplan.api import EngineLimits, build_deployment
from inferplan.perf.step_cost import StepCost, batch_shape
from inferplan.runs import SimulationConfig, simulate_config
from inferplan.sim.cluster import Cluster, SimOptions
from inferplan.sim.loop import SimResult, simulate
from inferplan.sim.policies import POLICIES, get_policy
from inferplan.sim.state import FINISHED, REJECTED
from inferplan.workload.request import Workload

# memory fractions that leave an L4 a small KV cache: blocks, and sliding-window pages, run out
_SMALL_CACHE = {"llama-3.1-8b": 0.78, "gemma-3-4b": 0.45}


@st.composite
def workloads(draw: st.DrawFn) -> Workload:
    n = draw(st.integers(1, 40))
    gaps = draw(st.lists(st.floats(0, 0.5), min_size=n, max_size=n))
    prompts = draw(st.lists(st.integers(1, 3000), min_size=n, max_size=n))
    outs = draw(st.lists(st.integers(1, 300), min_size=n, max_size=n))
    groups = draw(st.lists(st.integers(-1, 2), min_size=n, max_size=n))
    return Workload.build(np.cumsum(gaps), prompts, outs, prefix_group=groups, prefix_tokens=[256] * n)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    wl=workloads(),
    policy=st.sampled_from(sorted(POLICIES)),
    budget=st.sampled_from([64, 512, 8192]),
    max_seqs=st.sampled_from([1, 4, 64]),
    util=st.sampled_from([0.2, 0.9]),
    prefix=st.booleans(),
    replicas=st.integers(1, 3),
    router=st.sampled_from(["round-robin", "least-kv", "power-of-two", "session-affinity", "least-outstanding"]),
    swap=st.sampled_from([0.0, 0.05, 4.0]),
)
def test_every_request_finishes_or_is_rejected_with_a_reason(
    wl: Workload, policy: str, budget: int, max_seqs: int, util: float, prefix: bool, replicas: int, router: str,
    swap: float,
) -> None:
    """Random workloads and limits: requests finish with all their tokens or are rejected with a reason;
    KV blocks never exceed capacity (checked after every step); times are ordered. Preemption recomputes,
    or swaps to a little or plenty of host memory (recomputing when it is full)."""
    limits = EngineLimits(max_num_seqs=max_seqs, max_num_batched_tokens=budget, gpu_memory_utilization=util,
                          enable_prefix_caching=prefix, swap_space_gib=swap)
    dep = build_deployment("llama-3.2-1b", "l4", limits=limits)
    res = simulate(wl, Cluster.replicas([dep] * replicas), get_policy(policy, {"chunk_size": budget}), router=router,
                   options=SimOptions(check_invariants=True))
    t = res.table
    fin, rej = t.status == FINISHED, t.status == REJECTED
    assert (fin | rej).all()
    assert (t.reject_reason[rej] > 0).all() and (t.reject_reason[fin] == 0).all()
    assert np.array_equal(t.out_done[fin], t.output[fin])
    assert (t.t_first_scheduled[fin] >= t.arrival[fin]).all()
    assert (t.t_first_token[fin] >= t.t_first_scheduled[fin]).all()
    assert (t.t_finish[fin] >= t.t_first_token[fin]).all()
    for rep in res.replicas:
        assert rep.max_kv_blocks_used <= rep.state.pool.num_blocks
        assert rep.state.batch.n == 0 and len(rep.state.waiting) == 0
        assert not rep.state.swapped  # every swapped request came back


def test_same_seed_gives_a_byte_identical_summary() -> None:
    """Two runs of the same configuration produce the same summary JSON, byte for byte."""
    cfg = SimulationConfig(model="llama-3.1-8b", device="l4", workload="bursty-chat", rate=3, duration_s=120, seed=7,
                           replicas=2, router="power-of-two", slo="ttft_p90=1s,tpot_p90=80ms")
    a = json.dumps(simulate_config(cfg)[1].to_json(), sort_keys=True)
    b = json.dumps(simulate_config(cfg)[1].to_json(), sort_keys=True)
    assert a == b


def test_different_seed_gives_a_different_run() -> None:
    """The seed reaches the workload generator."""
    a = simulate_config(SimulationConfig(workload="chat", rate=5, duration_s=60, seed=1))[1]
    b = simulate_config(SimulationConfig(workload="chat", rate=5, duration_s=60, seed=2))[1]
    assert a.ttft_s != b.ttft_s


def test_decode_leaps_match_stepping_one_by_one() -> None:
    """Running pure-decode stretches as one event gives bit-identical request timings."""
    from inferplan.workload.presets import make_workload

    wl = make_workload("chat", rate=6, duration_s=120, seed=5)
    dep = build_deployment("gemma-2-9b", "l40s")  # sliding-window layers exercise the windowed sums too
    two = Cluster.replicas([dep, dep])
    a = simulate(wl, two, get_policy("vllm"), router="least-kv", options=SimOptions(leap=True))
    b = simulate(wl, two, get_policy("vllm"), router="least-kv", options=SimOptions(leap=False))
    for field in ("t_first_token", "t_finish", "t_first_scheduled", "out_done", "num_preemptions", "max_itl"):
        assert np.array_equal(getattr(a.table, field), getattr(b.table, field), equal_nan=True), field
    assert a.num_steps == b.num_steps and a.itl.n == b.itl.n


@pytest.mark.parametrize(
    ("case", "model", "device", "policy", "preset", "rate", "replicas", "prefill"),
    [
        ("one replica, finishes crossed inside a leap", "llama-3.1-8b", "h100-sxm", "vllm", "chat", 8.0, 1, False),
        ("one replica, small chunks", "llama-3.1-8b", "l4", "sarathi", "code", 1.0, 1, False),
        ("three replicas behind round-robin", "llama-3.1-8b", "a10g", "vllm", "chat", 9.0, 3, False),
        ("prefill and decode pools", "llama-3.1-8b", "h100-sxm", "vllm", "summarize", 3.0, 1, True),
        ("SGLang: prefill steps of their own", "llama-3.1-8b", "h100-sxm", "sglang", "chat", 8.0, 1, False),
    ],
)
def test_leaps_match_stepping_one_by_one_on_a_single_replica(
    case: str, model: str, device: str, policy: str, preset: str, rate: float, replicas: int, prefill: bool
) -> None:
    """The leaps of a replica whose load no router reads (which run through requests finishing on the
    way and take arrivals in: the benchmark's path) give the same request timings, token counts, steps
    and energy as stepping one by one."""
    from inferplan.workload.presets import make_workload

    wl = make_workload(preset, rate=rate, duration_s=240, seed=7)
    dep = build_deployment(model, device)
    cluster = Cluster.disaggregated([dep], [dep] * replicas) if prefill else Cluster.replicas([dep] * replicas)
    a = simulate(wl, cluster, get_policy(policy), options=SimOptions(leap=True))
    b = simulate(wl, cluster, get_policy(policy), options=SimOptions(leap=False))
    assert a.num_steps > b.table.status.shape[0], case  # many decode steps per request: leaps were taken
    for field in ("t_first_token", "t_finish", "t_first_scheduled", "out_done", "max_itl", "status"):
        assert np.array_equal(getattr(a.table, field), getattr(b.table, field), equal_nan=True), (case, field)
    assert a.num_steps == b.num_steps and a.itl.n == b.itl.n
    assert a.itl.total == pytest.approx(b.itl.total, rel=1e-12)
    for ra, rb in zip(a.replicas, b.replicas, strict=True):
        assert ra.num_steps == rb.num_steps
        assert ra.busy_s == pytest.approx(rb.busy_s, rel=1e-12)
        assert ra.energy_j == pytest.approx(rb.energy_j, rel=1e-12)
        sa, sb = ra.series.as_arrays(), rb.series.as_arrays()
        for key in ("busy_s", "steps", "prefill_tokens", "decode_tokens", "energy_j", "running_s"):
            assert np.allclose(sa[key], sb[key], rtol=1e-9, atol=1e-9), (case, key)


def test_a_lone_replica_takes_most_arrivals_in_inside_its_leaps() -> None:
    """At the chat preset's own rate, most arrivals join a running leap instead of ending it: the loop
    handles far fewer events than there are requests (stepping one by one handles one per step)."""
    from inferplan.workload.presets import make_workload

    wl = make_workload("chat", num_requests=3000, seed=3)
    dep = build_deployment("llama-3.1-8b", "h100-sxm")
    res = simulate(wl, Cluster.replicas([dep]), get_policy("vllm"))
    assert res.num_events < len(wl) / 3
    two = simulate(wl, Cluster.replicas([dep, dep]), get_policy("vllm"), router="least-kv")  # a router reads loads
    assert two.num_events > len(wl)
    blind = simulate(wl, Cluster.replicas([dep, dep]), get_policy("vllm"), router="round-robin")  # assigned up front
    assert blind.num_events < len(wl) / 2


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(2, 60),
    mean_gap=st.sampled_from([0.005, 0.05, 0.5]),
    policy=st.sampled_from(sorted(POLICIES)),
    budget=st.sampled_from([256, 2048, 8192]),
    max_seqs=st.sampled_from([2, 8, 256]),
    small=st.booleans(),
    model=st.sampled_from(sorted(_SMALL_CACHE)),
    seed=st.integers(0, 10_000),
    replicas=st.integers(1, 3),
    swap=st.booleans(),
)
def test_a_lone_replica_taking_arrivals_inside_a_leap_matches_stepping(
    n: int, mean_gap: float, policy: str, budget: int, max_seqs: int, small: bool, model: str, seed: int,
    replicas: int, swap: bool,
) -> None:
    """Random traffic on one to three replicas behind round-robin with a small KV cache (on an L4,
    Llama-3.1-8B at 78% memory: 350 to 740 blocks; Gemma-3-4B, whose sliding-window layers page apart,
    at 45%: 3,657 pages, six 3,000-token sequences), tight budgets and few slots: leaps that take
    arrivals in give the same per-request timings as stepping one by one, whatever stops them (a queue,
    a long prompt, blocks, slots)."""
    rng = np.random.default_rng(seed)
    wl = Workload.build(np.cumsum(rng.exponential(mean_gap, n)), rng.integers(1, 3000, n), rng.integers(1, 400, n))
    limits = EngineLimits(max_num_seqs=max_seqs, max_num_batched_tokens=budget, swap_space_gib=4.0 if swap else 0.0,
                          gpu_memory_utilization=_SMALL_CACHE[model] if small else 0.9)
    dep = build_deployment(model, "l4", limits=limits)
    pol = get_policy(policy, {"chunk_size": budget})
    fleet = Cluster.replicas([dep] * replicas)  # round-robin: loads not read
    a = simulate(wl, fleet, pol, options=SimOptions(leap=True, check_invariants=True))
    b = simulate(wl, fleet, pol, options=SimOptions(leap=False))
    for field in ("t_first_token", "t_finish", "t_first_scheduled", "out_done", "max_itl", "num_preemptions",
                  "status", "reject_reason"):
        assert np.array_equal(getattr(a.table, field), getattr(b.table, field), equal_nan=True), field
    assert a.num_steps == b.num_steps and a.itl.n == b.itl.n
    assert all(r.max_kv_blocks_used <= r.state.pool.num_blocks for r in a.replicas)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(1, 150),
    mean_gap=st.sampled_from([0.002, 0.02, 0.2]),
    policy=st.sampled_from(sorted(POLICIES)),
    budget=st.sampled_from([256, 8192]),
    max_seqs=st.sampled_from([2, 8, 256]),
    small=st.booleans(),
    model=st.sampled_from(sorted(_SMALL_CACHE)),
    prefix=st.booleans(),
    seed=st.integers(0, 10_000),
    replicas=st.integers(2, 4),
    router=st.sampled_from(["least-kv", "least-outstanding", "power-of-two", "session-affinity", "precise-prefix"]),
)
def test_leaps_behind_a_router_that_reads_loads_match_stepping(
    n: int, mean_gap: float, policy: str, budget: int, max_seqs: int, small: bool, model: str, prefix: bool,
    seed: int, replicas: int, router: str,
) -> None:
    """Behind every router that reads loads, leaps run on through arrivals (the loads come from their rows),
    are cut by the requests routed to them or take those in, and still give the same routing, per-request
    timings, steps and energy as stepping one by one; prefix caching and session groups included."""
    rng = np.random.default_rng(seed)
    groups = rng.integers(-1, 3, n) if prefix else None
    wl = Workload.build(np.cumsum(rng.exponential(mean_gap, n)), rng.integers(1, 3000, n), rng.integers(1, 400, n),
                        prefix_group=groups, prefix_tokens=[512] * n if prefix else None,
                        session_id=rng.integers(-1, 4, n) if prefix else None)
    limits = EngineLimits(max_num_seqs=max_seqs, max_num_batched_tokens=budget, enable_prefix_caching=prefix,
                          gpu_memory_utilization=_SMALL_CACHE[model] if small else 0.9)
    fleet = Cluster.replicas([build_deployment(model, "l4", limits=limits)] * replicas)
    pol = get_policy(policy, {"chunk_size": budget})
    a = simulate(wl, fleet, pol, router=router, seed=seed, options=SimOptions(leap=True, check_invariants=True))
    b = simulate(wl, fleet, pol, router=router, seed=seed, options=SimOptions(leap=False))
    _assert_leaps_match_stepping(a, b, ("prefix_hit_tokens",), kv_bound=True)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(1, 120),
    mean_gap=st.sampled_from([0.005, 0.05, 0.3]),
    policy=st.sampled_from(sorted(POLICIES)),
    max_seqs=st.sampled_from([2, 8, 256]),
    util=st.sampled_from([0.78, 0.9]),
    seed=st.integers(0, 10_000),
    prefill=st.integers(1, 2),
    decode=st.integers(1, 3),
)
def test_decode_pool_leaps_taking_prompts_in_match_stepping(
    n: int, mean_gap: float, policy: str, max_seqs: int, util: float, seed: int, prefill: int, decode: int
) -> None:
    """Prefill and decode pools on random traffic: a prompt whose KV reaches a decode replica inside its
    leap is taken in as a decode row (or cuts the leap), with the same request timings, steps, energy
    and series as stepping one by one."""
    rng = np.random.default_rng(seed)
    wl = Workload.build(np.cumsum(rng.exponential(mean_gap, n)), rng.integers(1, 3000, n), rng.integers(1, 400, n))
    limits = EngineLimits(max_num_seqs=max_seqs, gpu_memory_utilization=util)
    dep = build_deployment("llama-3.1-8b", "l4", limits=limits)
    fleet = Cluster.disaggregated([dep] * prefill, [dep] * decode)
    pol = get_policy(policy)
    a = simulate(wl, fleet, pol, seed=seed, options=SimOptions(leap=True, check_invariants=True))
    b = simulate(wl, fleet, pol, seed=seed, options=SimOptions(leap=False))
    _assert_leaps_match_stepping(a, b)


def _assert_leaps_match_stepping(a: SimResult, b: SimResult, more: tuple[str, ...] = (), *,
                                 kv_bound: bool = False) -> None:
    """``a`` (leaps) and ``b`` (stepping one by one) agree on every request (the fields below and ``more``),
    the step and gap counts, and each replica's steps, energy and series. A leap's KV series holds the
    blocks its segments end with, an upper bound, so it is not compared (``kv_bound``: check the peak is
    at least stepping's and within the pool)."""
    for field in ("replica", "t_first_token", "t_finish", "t_first_scheduled", "out_done", "max_itl",
                  "num_preemptions", "status", "reject_reason", *more):
        assert np.array_equal(getattr(a.table, field), getattr(b.table, field), equal_nan=True), field
    assert a.num_steps == b.num_steps and a.itl.n == b.itl.n
    for ra, rb in zip(a.replicas, b.replicas, strict=True):
        assert ra.num_steps == rb.num_steps
        if kv_bound:
            assert rb.max_kv_blocks_used <= ra.max_kv_blocks_used <= ra.state.pool.num_blocks
        assert ra.energy_j == pytest.approx(rb.energy_j, rel=1e-9)
        sa, sb = ra.series.as_arrays(), rb.series.as_arrays()
        for key in ("busy_s", "steps", "prefill_tokens", "decode_tokens", "running_s", "waiting_s"):
            assert np.allclose(sa[key], sb[key], rtol=1e-9, atol=1e-9), key


def test_a_fleet_behind_least_kv_handles_few_events_beyond_its_arrivals() -> None:
    """Eight replicas behind least-kv at the chat preset's rate each: no leap ends at an arrival routed
    elsewhere, and most routed arrivals are taken in by the leap running there, so the loop handles
    about one event per arrival (stepping one by one: one per step of every replica)."""
    from inferplan.workload.presets import make_workload

    wl = make_workload("chat", num_requests=3000, rate=44, seed=3)
    dep = build_deployment("llama-3.1-8b", "h100-sxm")
    res = simulate(wl, Cluster.replicas([dep] * 8), get_policy("vllm"), router="least-kv")
    assert len(wl) <= res.num_events < 1.5 * len(wl)
    assert res.num_steps > 10 * res.num_events


def test_md1_queue_matches_pollaczek_khinchine() -> None:
    """One request at a time, constant service D, Poisson arrivals at rho=0.6: mean wait = rho D / (2 (1 - rho))."""
    limits = EngineLimits(max_num_seqs=1)
    dep = build_deployment("llama-3.2-1b", "h100-sxm", limits=limits)
    service = StepCost(dep).seconds(batch_shape([(256, 0)]))
    rho = 0.6
    n = 60_000
    rng = np.random.default_rng(11)
    arrivals = np.cumsum(rng.exponential(service / rho, n))
    wl = Workload.build(arrivals, [256] * n, [1] * n)
    res = simulate(wl, Cluster.replicas([dep]), get_policy("vllm"))
    t = res.table
    wait = float(np.mean(t.t_first_scheduled - t.arrival))
    expected = rho * service / (2 * (1 - rho))
    assert abs(wait - expected) / expected < 0.05
    assert np.allclose(t.t_finish - t.t_first_scheduled, service)
