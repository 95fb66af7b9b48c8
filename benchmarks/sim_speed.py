"""Simulator speed: 100,000 chat requests on one H100 replica of Llama-3.1-8B.

Run: python benchmarks/sim_speed.py [--requests N] [--rate R] [--engine vllm|sglang|trtllm]
Prints wall time, requests/s and steps/s, and — on the first 10,000 requests, in the
same run — the ratio against stepping the engine one step at a time (the same
simulator with decode leaps off, which is how a per-step event simulator works),
after checking both give identical per-request timings.
"""

from __future__ import annotations

import argparse

import numpy as np

from inferplan.api import build_deployment
from inferplan.sim.cluster import Cluster, SimOptions
from inferplan.sim.loop import simulate
from inferplan.sim.policies import get_policy
from inferplan.workload.presets import make_workload
from inferplan.workload.transforms import head


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=100_000)
    ap.add_argument("--rate", type=float, default=None, help="default: the chat preset's 5.5 req/s")
    ap.add_argument("--engine", default="vllm", help="the engine whose scheduler runs (default vllm)")
    args = ap.parse_args()
    wl = make_workload("chat", num_requests=args.requests, rate=args.rate, seed=0)
    dep = build_deployment("llama-3.1-8b", "h100-sxm", engine=args.engine)
    policy = dep.serving_engine.scheduler
    res = simulate(wl, Cluster.replicas([dep]), get_policy(policy))
    print(f"{len(wl):,} chat requests at {wl.mean_rate:.2f} req/s, Llama-3.1-8B on 1x H100 ({policy} policy)")
    print(f"  wall {res.wall_s:.2f} s | {len(wl) / res.wall_s:,.0f} requests/s | {res.num_steps / res.wall_s:,.0f} "
          f"engine steps/s ({res.num_steps:,} steps, {res.makespan_s / 3600:.2f} h simulated)")
    print(f"  {res.num_events:,} events: arrivals the replica did not take in itself, and leap or step ends")
    sub = head(wl, 10_000)
    fast = simulate(sub, Cluster.replicas([dep]), get_policy(policy))
    slow = simulate(sub, Cluster.replicas([dep]), get_policy(policy), options=SimOptions(leap=False))
    same = all(np.array_equal(getattr(fast.table, f), getattr(slow.table, f), equal_nan=True)
               for f in ("t_first_token", "t_finish", "max_itl"))
    print(f"  first 10,000: {fast.wall_s:.2f} s vs {slow.wall_s:.2f} s stepping one by one "
          f"= {slow.wall_s / fast.wall_s:.1f}x faster; identical per-request timings: {same}")


if __name__ == "__main__":
    main()
