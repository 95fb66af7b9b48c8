"""Two models on one device (``plan --fleet``): where each model's own fleet leaves its devices half idle,
one device running a replica of each may serve both for less.

Each model is first planned alone. Then, for each pair, on each device type either plan chose, the
pair is placed together: one engine process per model on every device, the device's memory split
between them (vLLM's ``--gpu-memory-utilization`` "is a per-instance limit ... if you have two vLLM
instances running on the same GPU, you can set the GPU memory utilization to 0.5 for each instance",
``CacheConfig`` in ``vllm/config/cache.py``; Ray Serve's fractional-GPU guide runs two replicas per L4).
The processes take turns on the device: without MPS, kernels of different processes do not run at
the same time (NVIDIA's MPS guide, "When to use MPS"), so the simulator runs their steps one after
another (``Cluster.gpu_of``). One simulation of both workloads, each model judged by its own SLOs and
its tenants' deadlines, decides; the fewest devices that meet both, if cheaper than apart, win.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from itertools import combinations

import numpy as np

from inferplan.errors import InputError
from inferplan.perf.deployment import Deployment
from inferplan.perf.memory import plan_memory
from inferplan.plan.search import PlanResult
from inferplan.sim.class_summary import DEADLINE
from inferplan.sim.cluster import Cluster
from inferplan.sim.loop import SimResult, simulate
from inferplan.sim.slo import SLO
from inferplan.sim.state import FINISHED, REJECTED
from inferplan.sim.summary import measured_summary, request_latencies, summarize
from inferplan.sim.summary_types import SloCheck, Summary
from inferplan.workload.request import Workload
from inferplan.workload.transforms import mix

MIN_KV_SHARE = 0.2  # the least share of the KV memory left after both models' weights that either one gets


@dataclass(frozen=True, slots=True)
class ModelVerdict:
    """One model's requests in the shared simulation, judged by that model's own SLOs."""

    model: str
    num_requests: int
    num_rejected: int
    ttft_p90_s: float | None
    tpot_p90_s: float | None
    checks: tuple[str, ...]  # "ttft_p90<=1000ms: 412 ms" per SLO
    slo_attainment: float
    met: bool


@dataclass(frozen=True, slots=True)
class SharedDevices:
    """Models co-located: ``count`` devices, each running one replica of every model with its memory share."""

    models: tuple[str, ...]  # indices into the fleet spec's entries are ``entries``
    entries: tuple[int, ...]
    deployments: tuple[Deployment, ...]  # one per model, ``gpu_memory_utilization`` its share
    count: int
    cost_per_hour: float
    apart_cost_per_hour: float  # the models' own fleets, planned alone
    verdicts: tuple[ModelVerdict, ...]
    summary: Summary  # the shared simulation: energy, utilization
    context_tokens: int

    @property
    def saving_pct(self) -> float:
        return 100 * (1 - self.cost_per_hour / self.apart_cost_per_hour) if self.apart_cost_per_hour else 0.0


def share_devices(results: Sequence[PlanResult], say: Callable[[str], None] = lambda _: None,
                  seed: int = 0) -> list[SharedDevices]:
    """Pairs of models that serve both their workloads, within both their SLOs, on fewer devices than apart;
    the best saving first, each model in one pair at most."""
    found = []
    for i, j in combinations(range(len(results)), 2):
        best = _best_pair(results, (i, j), say, seed)
        if best is not None:
            found.append(best)
    chosen: list[SharedDevices] = []
    used: set[int] = set()
    for s in sorted(found, key=lambda s: s.apart_cost_per_hour - s.cost_per_hour, reverse=True):
        if not used & set(s.entries):
            chosen.append(s)
            used |= set(s.entries)
    return chosen


def _best_pair(results: Sequence[PlanResult], pair: tuple[int, int], say: Callable[[str], None],
               seed: int) -> SharedDevices | None:
    a, b = (results[k] for k in pair)
    if a.request.model == b.request.model:
        return None  # one model twice is one fleet: plan it once with both workloads
    apart = a.fleet.cost_per_hour + b.fleet.cost_per_hour
    best: SharedDevices | None = None
    for device_of in _devices(a, b):
        deps = _split_memory(_chosen(a, device_of), _chosen(b, device_of), (a.workload, b.workload))
        price = deps[0].price_per_hour if deps is not None else None
        if deps is None or price is None:
            continue
        for count in range(1, int(apart / price - 1e-9) + 1):
            if best is not None and count * price >= best.cost_per_hour:
                break
            say(f"sharing: {a.request.model} with {b.request.model} on {count} x {deps[0].device.name}")
            shared = _verify(a, b, pair, deps, count, seed)
            if all(v.met for v in shared.verdicts):
                best = replace(shared, apart_cost_per_hour=apart)
                break
    return best


def _devices(*results: PlanResult) -> list[Deployment]:
    """The device types the models' own fleets use (aggregated replicas), each once: a deployment holding it."""
    seen: dict[str, Deployment] = {}
    for r in results:
        for t, n in zip(r.types, r.fleet.replicas, strict=True):
            if n and t.aggregated and t.dep.tp * t.dep.pp == 1:
                seen.setdefault(t.dep.device.name, t.dep)
    return list(seen.values())


def _chosen(r: PlanResult, device_of: Deployment) -> Deployment | None:
    """The model's own chosen configuration (its busiest aggregated type) moved to ``device_of``'s device."""
    used = [(n, t) for t, n in zip(r.types, r.fleet.replicas, strict=True) if n and t.aggregated]
    if not used:
        return None
    dep = max(used, key=lambda x: x[0])[1].dep
    if dep.tp * dep.pp != 1 or dep.serving_engine.memory_rule != "fraction-of-total":
        return None  # a share of one device's memory: one device per replica, an engine that takes a share
    try:
        return dep if dep.device == device_of.device else replace(dep, device=device_of.device)
    except InputError:
        return None


def _split_memory(a: Deployment | None, b: Deployment | None,
                  workloads: tuple[Workload, Workload]) -> tuple[Deployment, Deployment] | None:
    """Both models on one device: each gets its weights and workspace, and the KV memory left is split by
    the KV each workload keeps (rate x mean tokens x bytes per token), at least ``MIN_KV_SHARE`` each."""
    if a is None or b is None:
        return None
    whole = min(a.serving_engine.defaults.memory_fraction, b.serving_engine.defaults.memory_fraction)
    plans = [plan_memory(d) for d in (a, b)]
    capacity = plans[0].capacity_bytes
    fixed = [p.weights_bytes + p.activation_bytes + p.overhead_bytes for p in plans]
    kv = whole * capacity - sum(fixed)
    if kv <= 0:
        return None
    demand = np.array([wl.mean_rate * float(np.mean(wl.input_tokens + wl.output_tokens)) * p.kv_bytes_per_token
                       for wl, p in zip(workloads, plans, strict=True)])
    share = np.clip(demand / demand.sum(), MIN_KV_SHARE, 1 - MIN_KV_SHARE)
    deps = tuple(replace(d, limits=replace(d.limits, gpu_memory_utilization=round((f + s * kv) / capacity, 3)))
                 for d, f, s in zip((a, b), fixed, share, strict=True))
    if not all(plan_memory(d).fits for d in deps):
        return None
    return deps[0], deps[1]


def _verify(a: PlanResult, b: PlanResult, entries: tuple[int, int], deps: tuple[Deployment, Deployment],
            count: int, seed: int) -> SharedDevices:
    """One simulation of both workloads (each model's tenants kept as classes) on ``count`` shared devices;
    each model judged by its own SLOs and its tenants' deadlines."""
    parts = [replace(r.workload, name=r.request.model) for r in (a, b)]
    wl = mix(*parts, name=f"{a.request.model} + {b.request.model}", keep_classes=True)
    owner = [m for m, p in enumerate(parts) for _ in p.class_names]  # each class's model
    pools = [list(range(m, 2 * count, 2)) for m in range(2)]
    cluster = Cluster.colocated(list(deps) * count, [k // 2 for k in range(2 * count)], [pools[m] for m in owner])
    res = simulate(wl, cluster, router="least-outstanding", seed=seed)
    verdicts = tuple(model_verdict(res, r.request.model, [k for k, o in enumerate(owner) if o == m], r.slos)
                     for m, r in enumerate((a, b)))
    price = deps[0].price_per_hour or 0.0
    return SharedDevices((a.request.model, b.request.model), entries, deps, count, count * price, 0.0, verdicts,
                         summarize(res), max(a.context_tokens, b.context_tokens))


def model_verdict(res: SimResult, model: str, classes: list[int], slos: tuple[SLO, ...]) -> ModelVerdict:
    """A model's requests (its ``classes``) summarized as its own plan judged them (``measured_summary``: the
    latency SLOs over those without a deadline, each tenant with one by it; an ITL SLO reads every gap)."""
    table = res.table
    idx = np.flatnonzero(np.isin(table.wl.class_index, classes))
    finished = table.status[idx] == FINISHED
    lat = {k: v[idx] for k, v in request_latencies(table).items()}
    s = measured_summary(lat, finished, slos, res.itl, makespan_s=res.makespan_s,
                         input_tokens=int(table.input[idx][finished].sum()),
                         output_tokens=int(table.out_done[idx][finished].sum()),
                         num_rejected=int((table.status[idx] == REJECTED).sum()), rejected_by_reason={},
                         workload=table.wl.take(idx))
    return ModelVerdict(model, idx.size, s.num_rejected, s.ttft_s.p90, s.tpot_s.p90, tuple(_said(c) for c in s.slos),
                        s.slo_attainment or 0.0, bool(s.slos_met))


def _said(c: SloCheck) -> str:
    if c.value_s == float("inf"):
        return f"{c.slo}: not all finished"
    return f"{c.slo}: {f'{c.value_s:,.0f} s' if DEADLINE in c.slo else f'{c.value_s * 1e3:,.0f} ms'}"
