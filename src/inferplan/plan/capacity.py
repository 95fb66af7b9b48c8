"""Capacity by simulation: the highest Poisson request rate at which a replica still meets every SLO.

Found by bisection on the rate, each probe a simulation of ``num_requests`` requests
with lengths resampled from the bucket. Results are cached by configuration hash in
the run registry, so an interrupted sweep resumes without repeating work.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, fields

import numpy as np

from inferplan.perf.deployment import Deployment
from inferplan.perf.step_costs import StepCosts
from inferplan.sim.cluster import Cluster, SimOptions
from inferplan.sim.loop import simulate
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
    # whole sessions (a workload whose turns share prefixes): probes replay them instead of drawing lengths
    sessions: Workload | None = None
    # offline work with a deadline: its capacity is the highest rate a replica keeps up with (no latency SLOs),
    # and ``rate_per_s`` the rate that finishes the class within its deadline
    offline: bool = False

    def fingerprint(self) -> str:
        """The bucket's name and every request's lengths (its rate is not: capacity searches over rates), and
        for sessions their turns' timing and shared content."""
        arrays = [self.input_tokens, self.output_tokens]
        if self.sessions is not None:
            wl = self.sessions
            chains = wl.prefix_chain or ()
            arrays += [wl.session_id, np.asarray([len(c) for c in chains]), np.concatenate([*chains, ()])]
        digests = [hashlib.sha256(np.ascontiguousarray(a, dtype=np.int64).tobytes()).hexdigest() for a in arrays]
        times = [] if self.sessions is None else [hashlib.sha256(self.sessions.arrival_s.tobytes()).hexdigest()]
        method = ["offline: highest rate kept up with"] if self.offline else []  # no latency SLOs
        return config_hash([self.name, *digests, *times, *method])


def session_bucket(wl: Workload) -> Bucket:
    """All of a session workload as one bucket: its sessions' requests keep their shared prefixes in probes."""
    return Bucket("sessions", wl.input_tokens, wl.output_tokens, len(wl) / max(wl.duration_s, 1e-9), sessions=wl)


def probe_workload(bucket: Bucket, rate: float, num_requests: int, seed: int) -> Workload:
    if bucket.sessions is not None:
        return _replay_sessions(bucket.sessions, rate, num_requests, seed)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, bucket.input_tokens.shape[0], num_requests)
    arrivals = np.cumsum(rng.exponential(1.0 / rate, num_requests))
    return Workload.build(arrivals, bucket.input_tokens[idx], bucket.output_tokens[idx], name=f"probe-{bucket.name}")


def _replay_sessions(wl: Workload, rate: float, num_requests: int, seed: int) -> Workload:
    """The first ``num_requests`` turns of the workload's sessions, in a random order, each session keeping its
    turns' gaps and content and starting as a Poisson process at the rate that gives ``rate`` requests/s."""
    rng = np.random.default_rng(seed)
    ids, first, counts = np.unique(wl.session_id, return_index=True, return_counts=True)
    order = rng.permutation(ids.shape[0])
    starts = np.cumsum(rng.exponential(len(wl) / ids.shape[0] / rate, ids.shape[0]))
    begin = np.empty(ids.shape[0])
    begin[order] = starts  # session order[j] starts j-th
    which = np.searchsorted(ids, wl.session_id)
    times = begin[which] + (wl.arrival_s - wl.arrival_s[first][which])
    keep = np.argsort(times, kind="stable")[:num_requests]
    chains = wl.prefix_chain
    return Workload.build(times[keep], wl.input_tokens[keep], wl.output_tokens[keep], session_id=wl.session_id[keep],
                          prefix_chain=None if chains is None else tuple(chains[i] for i in keep.tolist()),
                          chain_block_tokens=wl.chain_block_tokens, chain_covers_outputs=wl.chain_covers_outputs,
                          name="probe-sessions")


def meets(dep: Deployment, wl: Workload, slos: tuple[SLO, ...], unit: tuple[int, int] = (0, 1),
          prefill_dep: Deployment | None = None, costs: StepCosts | None = None) -> bool:
    """Does one replica (or a disaggregated unit of ``(prefill, decode)`` replicas, the prefill ones
    of ``prefill_dep`` when given), each running its engine's scheduler, meet every SLO?"""
    prefill, decode = unit
    cluster = (Cluster.disaggregated([prefill_dep or dep] * prefill, [dep] * decode) if prefill
               else Cluster.replicas([dep] * decode))
    res = simulate(wl, cluster, router="least-outstanding", options=SimOptions(stop_when_missed=slos), costs=costs)
    if res.stopped:  # certainly missed before the end: the rest cannot change the verdict
        return False
    s = summarize(res, slos)
    return s.num_rejected == 0 and all(c.met for c in s.slos)


@dataclass(frozen=True, slots=True, kw_only=True)
class CapacityJob:
    """One capacity search, whole: what ``capacity`` runs, what the executors ship to a worker, and
    (every field but those in ``NOT_IN_KEY``) what its registry key is made of."""

    dep: Deployment
    bucket: Bucket
    slos: tuple[SLO, ...]
    guess: float  # where the bisection starts (req/s): the analytical estimate
    num_requests: int = 400
    seed: int = 0
    iterations: int = 6
    unit: tuple[int, int] = (0, 1)  # (prefill, decode) replicas; (0, 1): one aggregated replica
    prefill_dep: Deployment | None = None

    # ``guess`` is the analytical estimate of the other fields, so it adds nothing
    NOT_IN_KEY = ("guess",)

    def key(self) -> str:
        """The registry key: every field that shapes the answer, each replica whole (model, device, formats,
        limits and the profile: a recalibrated profile must not reuse old results)."""
        parts = [[f.name, _key_part(getattr(self, f.name))] for f in fields(self) if f.name not in self.NOT_IN_KEY]
        return "capacity:" + config_hash(parts)

    def expected_cost(self) -> float:
        """How long the search takes, relatively: its probes' tokens (for running the longest first)."""
        per_request = float(self.bucket.input_tokens.mean() + self.bucket.output_tokens.mean())
        return self.num_requests * per_request * (sum(self.unit) or 1)

    def run(self) -> float:
        """The capacity (picklable: a worker process or Ray task calls this; the planner keeps the cache)."""
        return capacity(self)


def _key_part(value: object) -> object:
    if isinstance(value, (Deployment, Bucket)):
        return value.fingerprint()
    if isinstance(value, tuple):
        return [_key_part(v) for v in value]
    if isinstance(value, SLO):
        return str(value)
    return value


def cached_capacity(cache: Registry, key: str) -> float | None:
    """The capacity the registry holds under ``key`` (``CapacityJob.key``); None: not searched yet."""
    hit = cache.cache_get(key)
    return None if hit is None else float(hit)


def capacity(job: CapacityJob, *, cache: Registry | None = None) -> float:
    """Requests/s one replica (or a ``(prefill, decode)`` unit) sustains on the bucket within the SLOs (0: none),
    read from ``cache`` or searched and kept there."""
    if cache is None:
        return _search(job)
    key = job.key()
    found = cached_capacity(cache, key)
    if found is None:
        found = _search(job)
        cache.cache_put(key, found)
    return found


def keeps_up(dep: Deployment, wl: Workload, unit: tuple[int, int] = (0, 1), prefill_dep: Deployment | None = None,
             costs: StepCosts | None = None) -> bool:
    """Offline work, which has no latency SLOs: does one replica (or unit) keep up with ``wl``, nothing rejected
    and its queueing delay not growing through the run (``summary.overload_note``)?"""
    prefill, decode = unit
    cluster = (Cluster.disaggregated([prefill_dep or dep] * prefill, [dep] * decode) if prefill
               else Cluster.replicas([dep] * decode))
    s = summarize(simulate(wl, cluster, router="least-outstanding", costs=costs))
    return s.num_rejected == 0 and s.sim is not None and s.sim.overload is None


def _search(job: CapacityJob) -> float:
    """Bisection on the Poisson rate, from the analytical guess: the highest rate that meets the SLOs, or for
    offline work (no latency objectives; its deadline sets the rate it needs) the highest it keeps up with."""
    costs = StepCosts()  # the probes share them

    def probe(rate: float) -> bool:
        wl = probe_workload(job.bucket, rate, job.num_requests, job.seed)
        if job.bucket.offline:
            return keeps_up(job.dep, wl, job.unit, job.prefill_dep, costs)
        return meets(job.dep, wl, job.slos, job.unit, job.prefill_dep, costs)

    # 1. bracket: lo meets the SLOs, hi does not (start from the analytical guess)
    lo, hi = 0.0, max(job.guess, 1e-3)
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
        for _ in range(job.iterations):
            mid = (lo + hi) / 2
            if probe(mid):
                lo = mid
            else:
                hi = mid
    return lo
