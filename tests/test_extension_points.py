"""The changes docs/architecture.md walks through, each made here the way the page says: one registration."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields

import pytest

from inferplan.api import build_deployment
from inferplan.perf.resolve import resolve_speculation
from inferplan.plan.space import Candidate, QualityBudget, SearchSpace, enumerate_candidates
from inferplan.sim import routers
from inferplan.sim.cluster import Cluster
from inferplan.sim.loop import simulate
from inferplan.sim.policies import POLICIES, PagedScheduler, get_policy
from inferplan.sim.replica import Replica
from inferplan.specs.catalog import get_model
from inferplan.specs.speculation import Speculation
from inferplan.workload.presets import make_workload

DEP = build_deployment("llama-3.1-8b", "h100-sxm")


class LastReplica(routers.ReadsLoad):
    """A router that always picks the last accepting replica."""

    name = "last"

    def choose(self, rid: int, replicas: Sequence[Replica]) -> int:
        return len(replicas) - 1


def test_a_router_is_one_class_and_one_entry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(routers.ROUTERS, "last", lambda rng, wl: LastReplica())
    wl = make_workload("chat", rate=2, duration_s=20, seed=0)
    res = simulate(wl, Cluster.replicas([DEP, DEP, DEP]), get_policy("vllm"), router="last")
    assert res.router == "last" and (res.table.replica == 2).all()


def test_an_engine_policy_is_one_entry(monkeypatch: pytest.MonkeyPatch) -> None:
    """A policy is a PagedScheduler with options (or any EnginePolicy) behind a name."""
    monkeypatch.setitem(POLICIES, "one-at-a-time", lambda opts: PagedScheduler(name="one-at-a-time", max_num_seqs=1))
    wl = make_workload("chat", rate=2, duration_s=20, seed=0)
    res = simulate(wl, Cluster.replicas([DEP]), get_policy("one-at-a-time"), router="round-robin")
    assert res.policy == "one-at-a-time"
    spans = sorted(zip(res.table.t_first_scheduled.tolist(), res.table.t_finish.tolist(), strict=True))
    assert all(b[0] >= a[1] for a, b in zip(spans, spans[1:], strict=False))  # one sequence at a time


# each axis of the search space, and the Candidate field that carries its value
AXES = {"engines": "engine", "tp": "tp", "pp": "pp", "max_num_seqs": "max_num_seqs",
        "max_num_batched_tokens": "max_num_batched_tokens", "llamacpp_slots": "max_num_seqs", "speculation": "spec",
        "host_kv_ratio": "host_kv_ratio"}
AXIS_DEVICE = {"llamacpp_slots": "m4-max-128gb"}  # an axis of llama.cpp, the default engine there


def test_every_axis_of_the_search_space_reaches_the_candidates() -> None:
    """A new axis is a SearchSpace field, a Candidate field and a line in enumerate_candidates: this fails
    until all three exist (the axis must be listed here with its Candidate field)."""
    assert set(AXES) | {"devices"} == {f.name for f in fields(SearchSpace)}
    assert set(AXES.values()) <= {f.name for f in fields(Candidate)}
    model = get_model("llama-3.1-8b")
    for axis, field in AXES.items():
        values = {f.name: getattr(SearchSpace(), f.name) for f in fields(SearchSpace)}
        given = {"engines": "sglang", "speculation": resolve_speculation("ngram", k=2)}
        one = given[axis] if axis in given else values[axis][-1]
        space = SearchSpace(**(values | {"devices": (AXIS_DEVICE.get(axis, "h100-sxm"),), axis: (one,)}))
        got = {getattr(c, field) for c, _ in enumerate_candidates(model, space, QualityBudget(1.0),
                                                                  context_tokens=2048)}
        one = one.label() if isinstance(one, Speculation) else one  # a candidate names its speculation
        if axis == "pp":  # one node holds an 8B model: deeper pipelines are pruned, nothing else is asked for
            assert got <= {one}
            continue
        assert got == {one}, axis

