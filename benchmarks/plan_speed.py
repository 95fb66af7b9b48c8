"""Planner speed: the default `inferplan plan` end to end, and the analytical screen's rate.

Run: python benchmarks/plan_speed.py
Prints wall time and peak RSS of the default plan (fresh evaluation cache), and the
screen rate over every configuration of Llama-3.1-70B on seven GPU types, against
the capacity-by-simulation step it saves (seconds per simulated configuration).
"""

from __future__ import annotations

import resource
import tempfile
import time
from pathlib import Path

from inferplan.plan.analytic import screen
from inferplan.plan.search import PlanRequest, plan
from inferplan.plan.space import QualityBudget, SearchSpace, enumerate_candidates
from inferplan.sim.slo import parse_slos
from inferplan.specs.catalog import get_model
from inferplan.store import Registry


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        r = plan(PlanRequest(), registry=Registry(Path(tmp) / "runs.sqlite"))
        wall = time.perf_counter() - t0
    rss = max(resource.getrusage(who).ru_maxrss for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)) / 1024
    per_sim = wall / max(1, len(r.survivors))
    print(f"default plan: {wall:.1f} s wall, verified={r.verified}, ${r.fleet.cost_per_hour:.2f}/h, "
          f"{r.num_candidates} configurations screened, {len(r.survivors)} simulated, "
          f"peak RSS of any process {rss:,.0f} MiB")
    model = get_model("llama-3.1-70b")
    slos = parse_slos("ttft_p90=2s,tpot_p90=100ms")
    devices = ("l4", "a10g", "l40s", "a100-80gb", "h100-sxm", "h200", "b200")
    t0 = time.perf_counter()
    space = SearchSpace(devices=devices)
    cands = list(enumerate_candidates(model, space, QualityBudget(None), context_tokens=4096))
    t1 = time.perf_counter()
    for _ in screen(cands, 1000, 200, slos):
        pass
    t2 = time.perf_counter()
    print(f"screen: {len(cands)} configurations of llama-3.1-70b; "
          f"enumerate + memory prune {len(cands) / (t1 - t0):,.0f}/s, "
          f"analytical estimate {len(cands) / (t2 - t1):,.0f}/s; one simulated capacity search costs "
          f"~{per_sim:.1f} s in the default plan")


if __name__ == "__main__":
    main()
