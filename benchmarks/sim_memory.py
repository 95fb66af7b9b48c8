"""Peak resident memory of a 1,000,000-request simulation.

Run: python benchmarks/sim_memory.py [--requests N]
Chat preset at 12 req/s on one H100 replica of Llama-3.1-8B; prints peak RSS
(ru_maxrss) before and after, and the wall time.
"""

from __future__ import annotations

import argparse
import resource

from inferplan.api import build_deployment
from inferplan.sim.cluster import Cluster
from inferplan.sim.loop import simulate
from inferplan.sim.policies import get_policy
from inferplan.sim.summary import summarize
from inferplan.workload.presets import make_workload


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=1_000_000)
    args = ap.parse_args()
    base = rss_mib()
    wl = make_workload("chat", num_requests=args.requests, rate=12, seed=0)
    res = simulate(wl, Cluster.replicas([build_deployment("llama-3.1-8b", "h100-sxm")]), get_policy("vllm"))
    s = summarize(res)
    print(f"{len(wl):,} requests: wall {res.wall_s:.1f} s, finished {s.num_finished:,}")
    print(f"peak RSS {rss_mib():,.0f} MiB (after imports: {base:,.0f} MiB)")


if __name__ == "__main__":
    main()
