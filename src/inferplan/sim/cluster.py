"""What a simulation runs: the replicas, their roles, and how prompts flow between them, as one value.

Replicas are numbered as the simulator numbers them: prefill replicas first, then
aggregated ones (both take arrivals: the *front*), then decode replicas. A plain fleet
is aggregated replicas alone; a disaggregated one (DistServe, P136) has a prefill pool
that hands each prompt's KV to a decode replica; a mixed fleet has both kinds of front.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from inferplan.perf.deployment import Deployment
from inferplan.sim.reactive import ScalingPolicy
from inferplan.sim.slo import SLO

Spans = tuple[tuple[float, float], ...]


@dataclass(frozen=True, slots=True)
class SimOptions:
    """How the replicas run, beside the cluster's shape."""

    max_waiting: int = 0  # queue length at which a replica rejects arrivals (0: unbounded)
    priority: bool = False  # priority scheduling from the workload's priorities
    # HyGen's rule (sim/policies/offline_budget.py): offline prefill fills a step only while its predicted time
    # stays within this many seconds, when online requests are on the replica (0: off)
    offline_budget_s: float = 0.0
    # a reactive autoscaler (sim/reactive.py): pools of front replicas, each with its HPA policy (empty: off)
    scaling: tuple[tuple[tuple[int, ...], ScalingPolicy], ...] = ()
    leap: bool = True  # run identical decode steps as one event (same results, faster)
    check_invariants: bool = False  # assert KV and batch invariants after every step (tests)
    # stop as soon as these SLOs are certainly missed (``SimResult.stopped``): a failing probe ends early
    stop_when_missed: tuple[SLO, ...] = ()


@dataclass(frozen=True, slots=True)
class Cluster:
    """The topology of one simulation. Build it with ``replicas``, ``disaggregated`` or ``mixed``."""

    prefill: tuple[Deployment, ...] = ()
    aggregated: tuple[Deployment, ...] = ()
    decode: tuple[Deployment, ...] = ()
    handoff: tuple[tuple[int, ...], ...] = ()  # per prefill replica: the decode replicas (0-based) it may use
    uptime: tuple[Spans, ...] | None = None  # per front replica: when it accepts arrivals (autoscaling)
    kv_link_gb_s: float | None = None  # prefill-to-decode link; default: the device's own links
    # co-location: per replica, the device it runs on; replicas on one device take turns on it, a step at a
    # time (CUDA time-slicing between processes), and the device is priced and idles once (None: one each)
    gpu_of: tuple[int, ...] | None = None
    # per workload class, the front replicas that serve it (several models in one fleet; None: every one)
    serves: tuple[tuple[int, ...], ...] | None = None

    def __post_init__(self) -> None:
        if not self.front:
            raise ValueError("a cluster needs at least one replica that takes arrivals")
        if bool(self.prefill) != bool(self.decode):
            raise ValueError("a prefill pool needs a decode pool and the reverse")
        if len(self.handoff) != len(self.prefill) or any(not g for g in self.handoff):
            raise ValueError("handoff needs a non-empty list of decode replicas for every prefill replica")
        if any(not 0 <= j < len(self.decode) for g in self.handoff for j in g):
            raise ValueError(f"handoff names a decode replica outside 0..{len(self.decode) - 1}")
        if self.uptime is not None and len(self.uptime) != len(self.front):
            raise ValueError(f"uptime lists {len(self.uptime)} replicas, the pool has {len(self.front)}")
        if self.gpu_of is not None and (len(self.gpu_of) != len(self.deployments) or self.prefill):
            raise ValueError("gpu_of names the device of every replica of an aggregated cluster")
        if self.serves is not None and any(not pool or not all(0 <= k < len(self.front) for k in pool)
                                           for pool in self.serves):
            raise ValueError(f"serves needs, per class, a non-empty list of front replicas in 0..{len(self.front) - 1}")

    @classmethod
    def colocated(cls, deployments: Sequence[Deployment], gpu_of: Sequence[int],
                  serves: Sequence[Sequence[int]]) -> Cluster:
        """Aggregated replicas, several on one device where ``gpu_of`` says so, each class served by its own."""
        return cls(aggregated=tuple(deployments), gpu_of=tuple(gpu_of), serves=tuple(tuple(p) for p in serves))

    @classmethod
    def replicas(cls, deployments: Sequence[Deployment], *, uptime: Sequence[Spans] | None = None) -> Cluster:
        """Aggregated replicas, one per deployment; with ``uptime``, each accepts arrivals only then."""
        return cls(aggregated=tuple(deployments), uptime=None if uptime is None else tuple(uptime))

    @classmethod
    def disaggregated(cls, prefill: Sequence[Deployment], decode: Sequence[Deployment], *,
                      kv_link_gb_s: float | None = None) -> Cluster:
        """A prefill pool handing every prompt to the least KV-loaded replica of one decode pool."""
        every = tuple(range(len(decode)))
        return cls(prefill=tuple(prefill), decode=tuple(decode), handoff=(every,) * len(prefill),
                   kv_link_gb_s=kv_link_gb_s)

    @classmethod
    def mixed(cls, prefill: Sequence[Deployment], aggregated: Sequence[Deployment], decode: Sequence[Deployment],
              handoff: Sequence[Sequence[int]] | None = None, *, kv_link_gb_s: float | None = None) -> Cluster:
        """Aggregated replicas beside prefill pools; ``handoff`` per prefill replica (default: every decode)."""
        groups = (tuple(tuple(g) for g in handoff) if handoff is not None
                  else (tuple(range(len(decode))),) * len(prefill))
        return cls(prefill=tuple(prefill), aggregated=tuple(aggregated), decode=tuple(decode), handoff=groups,
                   kv_link_gb_s=kv_link_gb_s)

    @property
    def front(self) -> tuple[Deployment, ...]:
        """The replicas arrivals are routed to."""
        return self.prefill + self.aggregated

    @property
    def deployments(self) -> tuple[Deployment, ...]:
        """Every replica, in simulator order."""
        return self.prefill + self.aggregated + self.decode

    @property
    def roles(self) -> tuple[str, ...]:
        return ("prefill",) * len(self.prefill) + ("both",) * len(self.aggregated) + ("decode",) * len(self.decode)

    @property
    def is_disaggregated(self) -> bool:
        return bool(self.prefill)

    def crosses_nodes(self, k: int) -> bool:
        """Does prefill replica ``k`` hand off to another device type, so another machine (the network)?"""
        devices = {self.decode[j].device.name for j in self.handoff[k]}
        return devices != {self.prefill[k].device.name}

    def uptime_changes(self) -> list[tuple[float, list[int]]]:
        """Times at which the set of accepting front replicas changes, with the set from then on."""
        if self.uptime is None:
            return []
        times = sorted({t for spans in self.uptime for span in spans for t in span} | {0.0})
        return [(t, [k for k, spans in enumerate(self.uptime) if any(a <= t < b for a, b in spans)])
                for t in times]
