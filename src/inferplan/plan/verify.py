"""Verification: the chosen fleet simulated on the whole workload under each router worth trying."""

from __future__ import annotations

import math

import numpy as np

from inferplan.plan.executors import run_all
from inferplan.plan.pools import ReplicaType, VerifyJob, router_options
from inferplan.sim.digest import RunDigest
from inferplan.sim.slo import SLO
from inferplan.sim.summary_types import Headline, Summary
from inferplan.workload.request import Workload


def verify(types: list[ReplicaType], replicas: list[int], shares: np.ndarray, wl: Workload,
            bucket_of: np.ndarray, slos: tuple[SLO, ...], seed: int, executor: str,
            only: tuple[str, ...] | None = None) -> tuple[str, dict[str, Headline], Summary, int, RunDigest]:
    """Simulate the fleet under each router worth trying (in parallel; ``only``: those of them); the
    best one's summary.

    Best: meets every SLO, then the highest SLO attainment, then the lowest TTFT p90. Returns the
    router, every router's headline numbers, the best summary, its busiest type and its digest."""
    options = router_options(types, replicas, wl)
    if only is not None:
        options = tuple(r for r in options if r in only) or options[:1]
    jobs = [VerifyJob(types=tuple(types), replicas=tuple(replicas), shares=shares, workload=wl, bucket_of=bucket_of,
                      seed=seed, router=r, slos=slos) for r in options]
    results = run_all(VerifyJob.run, jobs, executor=executor)
    scores = {r: s.headline() for r, (s, _, _) in zip(options, results, strict=True)}
    k = max(range(len(options)), key=lambda i: _rank(scores[options[i]], i))
    return options[k], scores, *results[k]


def _rank(h: Headline, i: int) -> tuple[bool, float, float, int]:
    """Meets every SLO, then the highest SLO attainment, then the lowest TTFT p90, then the earlier router
    (no attainment or no TTFT, when nothing finished, ranks last)."""
    return h.slos_met, h.slo_attainment or 0.0, -(math.inf if h.ttft_p90_s is None else h.ttft_p90_s), -i
