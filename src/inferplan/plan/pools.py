"""What the fleet program buys, and how a fleet of it is simulated.

A *replica type* is either one aggregated replica or a disaggregated *unit*: ``p`` prefill
replicas of one configuration handing their prompts' KV to ``d`` decode replicas of another
(or the same) configuration (DistServe, P136). A fleet is a count per type; it may mix
aggregated replicas and units. Simulating it builds one cluster: every prefill replica of a
type hands off within that type's decode pool, aggregated replicas take arrivals beside the
prefill pools, and a router spreads arrivals over all of them.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from inferplan.perf.deployment import Deployment
from inferplan.perf.power import busy_power_w
from inferplan.plan.analytic import Estimate
from inferplan.plan.space import Candidate
from inferplan.sim.cluster import Cluster
from inferplan.sim.digest import RunDigest, digest
from inferplan.sim.loop import SimResult, simulate
from inferplan.sim.routers import PlannedRouter
from inferplan.sim.slo import SLO
from inferplan.sim.summary import summarize
from inferplan.sim.summary_types import Summary
from inferplan.workload.request import Workload

# Routers the planner tries on every fleet it verifies, besides the planned bucket router
# (which is only different from least-outstanding when the fleet has more than one type).
# Round-robin is left out: blind to load, it never beat these in our runs (docs/planner.md).
GENERAL_ROUTERS = ("least-outstanding", "least-kv", "power-of-two")


@dataclass(frozen=True, slots=True)
class Evaluated:
    candidate: Candidate
    estimate: Estimate
    capacity: tuple[float, ...] = ()  # per bucket, req/s


@dataclass(frozen=True, slots=True)
class ReplicaType:
    """An aggregated replica (``unit == (0, 1)``) or a unit of ``unit[0]`` prefill replicas of
    ``prefill`` (default: the same configuration) and ``unit[1]`` decode replicas of ``decode``."""

    decode: Evaluated
    dep: Deployment
    unit: tuple[int, int] = (0, 1)
    prefill: Evaluated | None = None
    prefill_dep: Deployment | None = None

    @property
    def aggregated(self) -> bool:
        return self.unit == (0, 1)

    @property
    def prefill_deployment(self) -> Deployment:
        return self.prefill_dep or self.dep

    @property
    def prefill_config(self) -> Evaluated:
        return self.prefill or self.decode

    @property
    def price_per_hour(self) -> float:
        if self.aggregated:
            return self.dep.price_per_hour or 0.0
        return (self.unit[0] * (self.prefill_deployment.price_per_hour or 0.0)
                + self.unit[1] * (self.dep.price_per_hour or 0.0))

    @property
    def power_w(self) -> float:
        """One replica's (or unit's) power at full load: each device's peak, or its cap."""
        return sum(busy_power_w(d.device) * d.num_devices for d in self._replica_deployments)

    @property
    def idle_w(self) -> float:
        """One replica's (or unit's) power with nothing to do."""
        return sum(d.device.idle_power_w * d.num_devices for d in self._replica_deployments)

    @property
    def _replica_deployments(self) -> list[Deployment]:
        """The deployments one replica (or P/D unit) is made of, one per replica."""
        if self.aggregated:
            return [self.dep]
        return [self.prefill_deployment] * self.unit[0] + [self.dep] * self.unit[1]

    @property
    def tiebreak(self) -> float:
        """Penalty per replica when prices tie (see `preference_penalty`)."""
        deps = [self.dep] if self.aggregated else [self.prefill_deployment, self.dep]
        return preference_penalty(deps)

    @property
    def arrival_replicas(self) -> int:
        """Replicas of one unit that take arrivals (its prefill replicas, or the aggregated one)."""
        return 1 if self.aggregated else self.unit[0]

    def label(self) -> str:
        text = self.decode.candidate.describe()
        if self.dep.device.power_cap_w:
            text += f", power cap {self.dep.device.power_cap_w:g} W"
        if self.aggregated:
            return text
        if self.prefill_dep is None:
            return f"{self.unit[0]} prefill + {self.unit[1]} decode of [{text}]"
        return (f"{self.unit[0]} prefill of [{self.prefill_config.candidate.describe()}] + "
                f"{self.unit[1]} decode of [{text}]")


@dataclass(frozen=True, slots=True)
class FleetLayout:
    """A fleet as the simulator lays it out (``cluster``), and the type of each of its replicas."""

    cluster: Cluster
    owner: tuple[int, ...]  # per replica (simulator order): its type


def fleet_layout(types: Sequence[ReplicaType], replicas: Sequence[int]) -> FleetLayout:
    """Every prefill replica of a unit hands off within its unit type's decode pool."""
    prefill: list[Deployment] = []
    aggregated: list[Deployment] = []
    decode: list[Deployment] = []
    handoff: list[list[int]] = []
    pre_owner: list[int] = []
    agg_owner: list[int] = []
    dec_owner: list[int] = []
    for c, (t, n) in enumerate(zip(types, replicas, strict=True)):
        if n == 0:
            continue
        if t.aggregated:
            aggregated += [t.dep] * n
            agg_owner += [c] * n
            continue
        pool = list(range(len(decode), len(decode) + t.unit[1] * n))
        decode += [t.dep] * len(pool)
        dec_owner += [c] * len(pool)
        for _ in range(t.unit[0] * n):
            prefill.append(t.prefill_deployment)
            handoff.append(pool)
            pre_owner.append(c)
    if not prefill:  # all aggregated: plain replicas
        return FleetLayout(Cluster.replicas(aggregated), tuple(agg_owner))
    return FleetLayout(Cluster.mixed(prefill, aggregated, decode, handoff), tuple(pre_owner + agg_owner + dec_owner))


def router_options(types: Sequence[ReplicaType], replicas: Sequence[int], wl: Workload) -> tuple[str, ...]:
    """The routers worth simulating for this fleet: none to choose with one arrival-facing replica;
    the planned bucket router when more than one type serves; session affinity and sglang-router's
    cache-aware policy when requests share sessions or prefixes."""
    front = sum(t.arrival_replicas * n for t, n in zip(types, replicas, strict=True))
    if front <= 1:
        return ("least-outstanding",)
    used = sum(1 for n in replicas if n)
    options = (("planned",) if used > 1 else ()) + GENERAL_ROUTERS
    if (wl.session_id >= 0).any() or wl.shares_prefixes:
        options += ("session-affinity", "cache-aware")
    return options


def simulate_fleet(types: Sequence[ReplicaType], replicas: Sequence[int], shares: np.ndarray, wl: Workload,
                   bucket_of: np.ndarray, seed: int, router: str = "planned", *,
                   layout: FleetLayout | None = None) -> SimResult:
    """The whole workload on the fleet; ``planned`` routes each bucket to types in the fleet program's shares.
    ``layout``: the fleet's ``fleet_layout``, when the caller already built it."""
    lay = layout or fleet_layout(types, replicas)
    route: str | PlannedRouter = router
    if router == "planned":
        route = PlannedRouter(bucket_of, shares_for(shares, replicas), list(lay.owner))
    return simulate(wl, lay.cluster, router=route, seed=seed)



def busiest_type(sim: SimResult, owner: Sequence[int]) -> int:
    """The type (``owner``: per replica, from ``fleet_layout``) whose replica was busiest in the simulation."""
    busiest = max(range(len(sim.replicas)), key=lambda i: sim.replicas[i].busy_s)
    return owner[busiest]


def shares_for(shares: np.ndarray, replicas: Sequence[int]) -> np.ndarray:
    """Shares restricted to types that have replicas (a type added during verification keeps its share)."""
    out = shares.copy()
    out[:, [c for c, n in enumerate(replicas) if n == 0]] = 0.0
    sums = out.sum(axis=1, keepdims=True)
    normalised: np.ndarray = np.divide(out, sums, out=np.zeros_like(out), where=sums > 0)
    return normalised


@dataclass(frozen=True, slots=True, kw_only=True)
class VerifyJob:
    """One verification run of a fleet under one router (picklable: the executors ship it to a worker)."""

    types: tuple[ReplicaType, ...]
    replicas: tuple[int, ...]  # per type
    shares: np.ndarray  # (buckets, types): the fleet program's split, for the planned router
    workload: Workload
    bucket_of: np.ndarray  # each request's bucket
    seed: int
    router: str
    slos: tuple[SLO, ...]

    def run(self) -> tuple[Summary, int, RunDigest]:
        """The summary, the busiest type and the run's digest (its latency distributions and time series)."""
        layout = fleet_layout(self.types, self.replicas)
        sim = simulate_fleet(self.types, self.replicas, self.shares, self.workload, self.bucket_of, self.seed,
                             self.router, layout=layout)
        return summarize(sim, self.slos), busiest_type(sim, layout.owner), digest(sim)


def preference_penalty(deps: list[Deployment]) -> float:
    """What breaks a price tie, lower first: documented quality loss (unknown counts as 100%), then every
    part a 16-bit, single-device, aggregated replica without a drafter does not need. Never weighed against price."""
    loss = sum(_loss(d.weights.quality_loss_pct()) + _loss(d.kv.quality_loss_pct()) for d in deps)
    parts = sum((d.weights.name not in ("bf16", "fp16")) + (d.kv.name not in ("bf16", "fp16"))
                + (d.num_devices - 1) / 8 + (d.speculation is not None) + (d.limits.cpu_kv_cache_gib > 0)
                for d in deps)
    return 1000.0 * loss + 10.0 * parts + 5.0 * (len(deps) - 1)


def _loss(pct: float | None) -> float:
    return 100.0 if pct is None else pct


def pick_survivors(feasible: list[tuple[Evaluated, Deployment]], devices: tuple[str, ...], rate: float,
                   per_device: int) -> list[tuple[Evaluated, Deployment]]:
    """Per device (and, where speculative decoding is searched, with and without it: the simulation decides
    whether it pays), the ``per_device`` most cost-efficient configurations, and the one whose fleet at this
    rate is estimated cheapest with the least quality loss and fewest parts: when int8 and bf16 both need one
    replica, bf16 is simulated too, so the fleet program can prefer it at the same price."""
    out: list[tuple[Evaluated, Deployment]] = []
    # with a drafter or without, with a host KV tier or without: both, each (the screen sees neither's effect)
    for device, speculating, tiered in itertools.product(devices, (False, True), (False, True)):
        mine = sorted((ed for ed in feasible if ed[0].candidate.device == device
                       and (ed[1].speculation is not None) == speculating
                       and (ed[1].limits.cpu_kv_cache_gib > 0) == tiered),
                      key=lambda ed: ed[0].estimate.dollars_per_rate)
        if not mine:
            continue
        picked = mine[:per_device]

        def fleet_cost(ed: tuple[Evaluated, Deployment]) -> tuple[float, float, float]:
            est, dep = ed[0].estimate, ed[1]
            replicas = math.ceil(rate / est.rate_per_s) if math.isfinite(rate) and rate > 0 else 1
            return replicas * (dep.price_per_hour or 0.0), preference_penalty([dep]), est.dollars_per_rate

        preferred = min(mine, key=fleet_cost)
        if all(preferred is not p for p in picked):
            picked.append(preferred)
        out.extend(picked)
    return out
