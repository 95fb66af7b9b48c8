"""Capacity by simulation: the highest Poisson request rate at which a replica still meets every SLO.

Found by bisection on the rate, each probe a simulation of ``num_requests`` requests
with lengths resampled from the bucket. Results are cached by configuration hash in
the run registry, so an interrupted sweep resumes without repeating work.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from inferplan.perf.deployment import Deployment
from inferplan.sim.loop import simulate
from inferplan.sim.policies import get_policy
from inferplan.sim.slo import SLO
from inferplan.sim.summary import summarize
from inferplan.store import Registry, config_hash
from inferplan.workload.request import Workload


@dataclass(frozen=True, slots=True)
class Bucket:
    """Requests of one size class: their lengths, and the share of the workload's rate they carry."""

    name: str
    input_tokens: np.ndarray
    output_tokens: np.ndarray
    rate_per_s: float

    def fingerprint(self) -> str:
        """The bucket's name and every request's lengths (its rate is not: capacity searches over rates)."""
        lengths = [hashlib.sha256(np.ascontiguousarray(a, dtype=np.int64).tobytes()).hexdigest()
                   for a in (self.input_tokens, self.output_tokens)]
        return config_hash([self.name, *lengths])


def probe_workload(bucket: Bucket, rate: float, num_requests: int, seed: int) -> Workload:
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, bucket.input_tokens.shape[0], num_requests)
    arrivals = np.cumsum(rng.exponential(1.0 / rate, num_requests))
    return Workload.build(arrivals, bucket.input_tokens[idx], bucket.output_tokens[idx], name=f"probe-{bucket.name}")


def meets(dep: Deployment, wl: Workload, slos: tuple[SLO, ...], unit: tuple[int, int] = (0, 1),
          prefill_dep: Deployment | None = None) -> bool:
    """Does one replica (or a disaggregated unit of ``(prefill, decode)`` replicas, the prefill ones
    of ``prefill_dep`` when given) meet every SLO?"""
    prefill, decode = unit
    res = simulate(wl, [dep] * decode, get_policy("vllm"), prefill=[prefill_dep or dep] * prefill,
                   router="least-outstanding")
    s = summarize(res, slos)
    return s.num_rejected == 0 and all(c.met for c in s.slos)


def capacity_key(dep: Deployment, bucket: Bucket, slos: tuple[SLO, ...], *, num_requests: int, seed: int,
                 iterations: int, unit: tuple[int, int], prefill_dep: Deployment | None) -> str:
    """The registry key of one capacity search: every argument that shapes its answer, each replica whole
    (model, device, formats, limits and the profile: a recalibrated profile must not reuse old results)."""
    parts: list[object] = [list(unit), dep.fingerprint(), bucket.fingerprint(), [str(s) for s in slos],
                           num_requests, seed, iterations, None if prefill_dep is None else prefill_dep.fingerprint()]
    return "capacity:" + config_hash(parts)


def capacity(
    dep: Deployment,
    bucket: Bucket,
    slos: tuple[SLO, ...],
    *,
    guess: float,
    num_requests: int = 400,
    seed: int = 0,
    iterations: int = 6,
    cache: Registry | None = None,
    unit: tuple[int, int] = (0, 1),
    prefill_dep: Deployment | None = None,
) -> float:
    """Requests/s one replica (or a ``(prefill, decode)`` unit) sustains on this bucket within the SLOs (0: none)."""
    key = capacity_key(dep, bucket, slos, num_requests=num_requests, seed=seed, iterations=iterations, unit=unit,
                       prefill_dep=prefill_dep)
    if cache is not None:
        hit = cache.cache_get(key)
        if hit is not None:
            return float(hit)
    def probe(rate: float) -> bool:
        return meets(dep, probe_workload(bucket, rate, num_requests, seed), slos, unit, prefill_dep)

    # 1. bracket: lo meets the SLOs, hi does not (start from the analytical guess)
    lo, hi = 0.0, max(guess, 1e-3)
    if probe(hi):
        lo, hi = hi, 2 * hi
        for _ in range(6):
            if not probe(hi):
                break
            lo, hi = hi, 2 * hi
    else:
        for _ in range(6):
            if probe(hi / 2):
                lo = hi / 2
                break
            hi /= 2
    # 2. bisect (when even the smallest probe failed, lo stays 0: the bucket cannot be served)
    if lo > 0:
        for _ in range(iterations):
            mid = (lo + hi) / 2
            if probe(mid):
                lo = mid
            else:
                hi = mid
    result = lo
    if cache is not None:
        cache.cache_put(key, result)
    return result
