"""Simulator speed of a routed fleet: the same chat traffic behind every router, as a ratio to round-robin.

Run: python benchmarks/fleet_speed.py [--requests N] [--replicas R] [--check N]

N chat requests at R times the preset's rate (5.5 req/s per replica) on R H100 replicas of
Llama-3.1-8B, behind each router in turn, in one process. Round-robin assigns arrivals up front,
so each replica takes its own in inside its leaps; the other routers read loads at every arrival.
Prints each router's wall time, events handled and its ratio to round-robin in the same run, and
checks on the first ``--check`` requests that every router's leaps give per-request results
identical to stepping one step at a time.
"""

from __future__ import annotations

import argparse

import numpy as np

from inferplan.api import build_deployment
from inferplan.sim.cluster import Cluster, SimOptions
from inferplan.sim.loop import simulate
from inferplan.sim.policies import get_policy
from inferplan.sim.routers import ROUTERS
from inferplan.workload.presets import make_workload
from inferplan.workload.transforms import head

FIELDS = ("replica", "t_first_scheduled", "t_first_token", "t_finish", "max_itl", "status")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=100_000)
    ap.add_argument("--replicas", type=int, default=8)
    ap.add_argument("--check", type=int, default=3000, help="requests checked against stepping one by one")
    args = ap.parse_args()
    wl = make_workload("chat", num_requests=args.requests, rate=5.5 * args.replicas, seed=0)
    fleet = Cluster.replicas([build_deployment("llama-3.1-8b", "h100-sxm")] * args.replicas)
    print(f"{len(wl):,} chat requests at {wl.mean_rate:.1f} req/s on {args.replicas}x H100, Llama-3.1-8B (vllm)")
    base = 0.0
    for router in ROUTERS:
        res = simulate(wl, fleet, get_policy("vllm"), router=router)
        base = base or res.wall_s
        sub = head(wl, args.check)
        fast = simulate(sub, fleet, get_policy("vllm"), router=router)
        slow = simulate(sub, fleet, get_policy("vllm"), router=router, options=SimOptions(leap=False))
        same = all(np.array_equal(getattr(fast.table, f), getattr(slow.table, f), equal_nan=True) for f in FIELDS)
        print(f"  {router:<18} {res.wall_s:6.2f} s  {res.wall_s / base:4.2f}x round-robin  {res.num_events:>8,} events"
              f"  | first {args.check:,} identical to stepping: {same}")


if __name__ == "__main__":
    main()
