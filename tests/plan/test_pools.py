"""Replica types, fleet layout, the router as a search dimension, and mixed / heterogeneous P/D fleets."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import yaml

from inferplan.api import build_deployment
from inferplan.deploy.fleet_files import write_deploy
from inferplan.perf.deployment import Deployment
from inferplan.plan.analytic import estimate
from inferplan.plan.pools import Evaluated, ReplicaType, fleet_layout, router_options, simulate_fleet
from inferplan.plan.search import PlanRequest, PlanResult, _fleet_for, _types_for, make_buckets
from inferplan.plan.space import Candidate
from inferplan.plan.verify import verify
from inferplan.report.plan_report import write_plan_report
from inferplan.sim.slo import parse_slos
from inferplan.sim.state import FINISHED
from inferplan.workload.presets import make_workload
from inferplan.workload.request import Workload

SLOS = parse_slos("ttft_p90=2s,tpot_p90=100ms")


def _evaluated(dep: Deployment) -> Evaluated:
    lim = dep.limits
    cand = Candidate(device=dep.device.name, tp=dep.tp, weights=dep.weights.name, kv=dep.kv.name,
                     max_num_seqs=lim.max_num_seqs, max_num_batched_tokens=lim.max_num_batched_tokens)
    return Evaluated(cand, estimate(dep, 1000, 200, SLOS))


H100 = build_deployment("llama-3.1-8b", "h100-sxm", weights="fp8")
A100 = build_deployment("llama-3.1-8b", "a100-80gb", weights="int8")
L4 = build_deployment("llama-3.1-8b", "l4", weights="fp8")


def test_fleet_layout_puts_prefill_then_aggregated_then_decode() -> None:
    """Two aggregated A100s and one unit (1 H100 prefill -> 2 A100 decode): the simulator's numbering,
    the unit's handoff pool and each replica's type."""
    agg = ReplicaType(_evaluated(A100), A100)
    unit = ReplicaType(_evaluated(A100), A100, (1, 2), _evaluated(H100), H100)
    layout = fleet_layout([agg, unit], [2, 1])
    cl = layout.cluster
    assert [d.device.name for d in cl.prefill] == ["h100-sxm"]
    assert [d.device.name for d in cl.aggregated] == ["a100-80gb"] * 2
    assert [d.device.name for d in cl.decode] == ["a100-80gb"] * 2
    assert cl.handoff == ((0, 1),) and layout.owner == (1, 0, 0, 1, 1)
    assert cl.roles == ("prefill", "both", "both", "decode", "decode")
    assert unit.price_per_hour == (H100.price_per_hour or 0) + 2 * (A100.price_per_hour or 0)
    assert "prefill of [1x h100-sxm" in unit.label()


def test_router_options_depend_on_the_fleet_and_the_workload() -> None:
    """One arrival-facing replica: nothing to choose. Two types: the planned bucket router too.
    Shared sessions: session affinity too."""
    a, b = ReplicaType(_evaluated(A100), A100), ReplicaType(_evaluated(H100), H100)
    wl = make_workload("chat", rate=2, duration_s=10, seed=0)
    assert router_options([a, b], [1, 0], wl) == ("least-outstanding",)
    assert router_options([a, b], [2, 0], wl)[0] == "least-outstanding"
    assert router_options([a, b], [1, 1], wl)[0] == "planned"
    sessions = Workload.build(wl.arrival_s, wl.input_tokens, wl.output_tokens,
                              session_id=np.arange(len(wl)) % 3)
    assert "session-affinity" in router_options([a, b], [1, 1], sessions)


def test_verification_picks_a_router_that_rescues_a_bad_split() -> None:
    """The fleet program's shares send every request to the L4, which cannot carry 4 req/s of chat; the
    planned router misses the SLOs, a load-aware router meets them on the same two replicas."""
    types = [ReplicaType(_evaluated(H100), H100), ReplicaType(_evaluated(L4), L4)]
    wl = make_workload("chat", rate=4, duration_s=120, seed=1)
    buckets, bucket_of = make_buckets(wl, 1)
    shares = np.array([[0.0, 1.0]])
    router, results, summary, _, checked = verify(types, [1, 1], shares, wl, bucket_of, SLOS, 0, "serial")
    assert checked.num_finished == summary.num_finished  # the digest is of the run the summary is of
    assert not results["planned"].slos_met
    assert router != "planned" and summary.slos_met and results[router].slos_met
    assert set(results) == {"planned", "least-outstanding", "least-kv", "power-of-two"}


def test_disaggregated_types_pair_the_two_best_configurations_both_ways() -> None:
    """Units of each of the two most cost-efficient configurations, and each prefilling for the other."""
    survivors = [(_evaluated(d), d) for d in (H100, A100, L4)]
    best = sorted(survivors, key=lambda ed: ed[0].estimate.dollars_per_rate)[:2]
    types = _types_for("disaggregated", survivors)
    pairs = {(t.prefill_deployment.device.name, t.dep.device.name, t.unit) for t in types}
    names = [d.device.name for _, d in best]
    assert pairs == {(p, d, u) for p in names for d in names for u in ((1, 1), (1, 2))}


def test_a_mixed_fleet_is_solved_and_verified_in_one_simulation() -> None:
    """Capacities that make the program buy an aggregated H100 for short requests and an H100 -> A100 unit
    for long ones: one simulation serves both kinds, and every request finishes."""
    wl = make_workload("chat", rate=3, duration_s=120, seed=5)
    buckets, bucket_of = make_buckets(wl, 2)
    types = [ReplicaType(_evaluated(H100), H100), ReplicaType(_evaluated(A100), A100, (1, 1), _evaluated(H100), H100)]
    caps = np.array([[100.0, 0.0], [0.0, 100.0]])  # (types, buckets): each kind serves one bucket only
    out = _fleet_for("mixed", types, caps, PlanRequest(executor="serial"), wl, SLOS, buckets, bucket_of,
                     lambda _m: None)
    assert out.fleet.replicas == (1, 1) and out.verified
    assert out.summary.num_finished == len(wl)
    sim = simulate_fleet(types, [1, 1], out.fleet.shares, wl, bucket_of, 0, "planned")
    t = sim.table
    assert (t.status == FINISHED).all()
    # numbering: 0 prefill (H100), 1 aggregated (H100), 2 decode (A100); the planned router keeps buckets apart
    assert set(np.unique(t.replica[bucket_of == 0]).tolist()) == {1}
    assert set(np.unique(t.replica[(bucket_of == 1) & (t.output > 1)]).tolist()) == {2}


def test_deploy_files_for_units_that_share_a_prefill_configuration(tmp_path: Path) -> None:
    """An H100 -> H100 unit and an H100 -> A100 unit: four pools in kubernetes.yaml, every name distinct,
    each decode pool on its own device; routing.json and the report name the router."""
    wl = make_workload("chat", rate=3, duration_s=60, seed=6)
    buckets, bucket_of = make_buckets(wl, 2)
    h = _evaluated(H100)
    types = [ReplicaType(h, H100, (1, 1)), ReplicaType(_evaluated(A100), A100, (1, 1), h, H100)]
    caps = np.array([[100.0, 0.0], [0.0, 100.0]])
    req = PlanRequest(executor="serial")
    out = _fleet_for("disaggregated", types, caps, req, wl, SLOS, buckets, bucket_of, lambda _m: None)
    r = PlanResult(request=req, workload=wl, slos=SLOS, buckets=buckets, num_candidates=2, screen_s=0.0,
                   screened=[], survivors=out.measured, fleet=out.fleet, types=types, verified=out.verified,
                   summary=out.summary, router=out.router, router_results=out.routers, mode="disaggregated")
    write_deploy(r, tmp_path)
    docs = [d for d in yaml.safe_load_all((tmp_path / "kubernetes.yaml").read_text()) if d["kind"] == "Deployment"]
    names = [d["metadata"]["name"] for d in docs if d["metadata"]["labels"]["app.kubernetes.io/component"] == "worker"]
    assert len(names) == 4 and len(set(names)) == 4
    routers = [d["metadata"]["name"] for d in docs
               if d["metadata"]["labels"]["app.kubernetes.io/component"] == "router"]
    assert len(routers) == 2 and not set(routers) & set(names)  # a P/D router per unit
    decode = sorted(n for n in names if n.endswith("decode"))
    assert decode == ["llama-3-1-8b-a100-80gb-decode", "llama-3-1-8b-h100-sxm-decode"]
    routing = json.loads((tmp_path / "routing.json").read_text())
    assert routing["router"] == out.router and len(routing["buckets"]) == len(buckets)
    assert (tmp_path / "launch.sh").read_text().count("--pd-disaggregation") == 2
    html = write_plan_report(r, tmp_path / "report.html", {}).read_text()
    assert f"router {out.router}" in html
