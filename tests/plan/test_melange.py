"""A Melange-style scenario on real prices: the verified mixed fleet is cheaper than the best verified single type."""

from __future__ import annotations

from pathlib import Path

from inferplan.api import EngineLimits, build_deployment
from inferplan.plan.search import PlanRequest, plan
from inferplan.sim.cluster import Cluster
from inferplan.sim.loop import simulate
from inferplan.sim.policies import get_policy
from inferplan.sim.slo import parse_slos
from inferplan.sim.summary import summarize
from inferplan.store import Registry
from inferplan.workload.presets import make_workload


def test_mixed_fleet_beats_every_single_type_on_chat_at_40_rps(tmp_path: Path) -> None:
    """Llama-3.1-8B, chat at 40 req/s, five GPU types at their list prices: the plan mixes types, is verified,
    and costs less than two H100s - the cheapest single-type fleet that meets the SLOs in simulation (one
    H100 does not)."""
    req = PlanRequest(workload="chat", rate=40, devices=("l4", "a10g", "l40s", "a100-80gb", "h100-sxm"))
    r = plan(req, registry=Registry(tmp_path / "runs.sqlite"))
    types = {r.types[c].dep.device.name for c, n in enumerate(r.fleet.replicas) if n}
    assert r.verified and len(types) >= 2
    slos = parse_slos(req.slo)
    wl = make_workload("chat", rate=40, seed=0)
    h100 = build_deployment("llama-3.1-8b", "h100-sxm", weights="fp8", limits=EngineLimits(max_num_batched_tokens=2048))
    assert not summarize(simulate(wl, Cluster.replicas([h100]), get_policy("vllm")), slos).slos_met
    single = summarize(simulate(wl, Cluster.replicas([h100, h100]), get_policy("vllm")), slos)
    assert single.sim is not None and single.sim.cost_per_hour is not None
    assert single.slos_met and r.fleet.cost_per_hour < single.sim.cost_per_hour
