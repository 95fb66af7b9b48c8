"""Summaries of a run: latency percentiles, throughput, goodput, SLO attainment, cost and energy.

The fields and their JSON live in `summary_types`; a simulation (`summarize`) and a bench
(`measure.bench_records.bench_summary`) both fill them through `measured_summary`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np
import numpy.typing as npt

from inferplan.sim.class_summary import class_summaries, deadline_checks, within_deadline
from inferplan.sim.loop import SimResult
from inferplan.sim.metrics import LogHistogram
from inferplan.sim.slo import SLO
from inferplan.sim.state import FINISHED, REJECTED, RejectReason, RequestTable
from inferplan.sim.summary_types import BenchCounts, Latency, SimStats, SloCheck, Summary
from inferplan.workload.request import Workload

F64 = npt.NDArray[np.float64]


def latency_stats(x: F64) -> Latency:
    """p50, p90, p99 and mean of the finite values; all None when there are none."""
    x = x[np.isfinite(x)]
    if x.size == 0:
        return Latency(p50=None, p90=None, p99=None, mean=None)
    p50, p90, p99 = np.percentile(x, [50, 90, 99])
    return Latency(p50=float(p50), p90=float(p90), p99=float(p99), mean=float(x.mean()))


def itl_stats(itl: LogHistogram) -> Latency:
    """Inter-token latency from its histogram (every gap of every request, not one value per request)."""
    return Latency(p50=itl.quantile(0.5), p90=itl.quantile(0.9), p99=itl.quantile(0.99), mean=itl.mean)


def request_latencies(t: RequestTable) -> dict[str, F64]:
    """Per-request TTFT, TPOT (mean gap after the first token), E2E and queue delay; NaN where undefined.
    TTFT and E2E include the serving replica's frontend time (the API server's, outside the engine loop)."""
    frontend = (np.where(t.replica >= 0, t.replica_frontend_s[np.maximum(t.replica, 0)], 0.0)
                if t.replica_frontend_s.size else 0.0)
    ttft = t.t_first_token - t.arrival + frontend
    e2e = t.t_finish - t.arrival + frontend
    with np.errstate(invalid="ignore", divide="ignore"):
        tpot = np.where(t.output > 1, (t.t_finish - t.t_first_token) / (t.output - 1), np.nan)
    queue = t.t_first_scheduled - t.arrival
    return {"ttft": ttft, "tpot": tpot, "e2e": e2e, "queue": queue}


def meets_slos(lat: dict[str, F64], finished: npt.NDArray[np.bool_], slos: tuple[SLO, ...],
               deadline_s: F64 | None = None) -> npt.NDArray[np.bool_]:
    """Per request: finished and within every TTFT/TPOT/E2E threshold (ITL SLOs apply to the whole run);
    a request with a deadline (``deadline_s`` finite): finished within it instead."""
    ok = finished.copy()
    for slo in slos:
        if slo.metric in ("ttft", "e2e"):
            ok &= lat[slo.metric] <= slo.threshold_s
        elif slo.metric == "tpot":
            ok &= ~(lat["tpot"] > slo.threshold_s)  # single-token requests have no TPOT: they pass
    if deadline_s is not None:
        ok = np.where(np.isfinite(deadline_s), within_deadline(lat["e2e"], finished, deadline_s), ok)
    return ok


def check_slos(slos: tuple[SLO, ...], finished_lat: dict[str, F64],
               itl_quantile: Callable[[float], float]) -> tuple[SloCheck, ...]:
    """Each objective's measured percentile over finished requests (ITL over every gap) and its verdict."""
    checks = []
    for slo in slos:
        if slo.metric == "itl":
            value = itl_quantile(slo.percentile / 100)
        else:
            vals = finished_lat[slo.metric]
            vals = vals[np.isfinite(vals)]
            value = float(np.percentile(vals, slo.percentile)) if vals.size else float("nan")
        checks.append(SloCheck(slo=str(slo), value_s=value, met=bool(value <= slo.threshold_s)))
    return tuple(checks)


def measured_summary(lat: dict[str, F64], finished: npt.NDArray[np.bool_], slos: tuple[SLO, ...],
                     itl: LogHistogram, *, makespan_s: float, input_tokens: int, output_tokens: int,
                     num_rejected: int, rejected_by_reason: dict[str, int], sim: SimStats | None = None,
                     bench: BenchCounts | None = None, workload: Workload | None = None) -> Summary:
    """What a simulation and a bench measure alike, from per-request latencies (``request_latencies``'
    keys, NaN where undefined) and which requests finished; the SLOs count as met only if nothing
    was rejected (a bench rejects what did not finish). ``workload``: its classes' deadlines are
    judged too, and the latency SLOs over the requests without one."""
    n, n_fin = len(finished), int(finished.sum())
    span = max(makespan_s, 1e-9)
    deadline = workload.deadline_s if workload is not None and workload.has_deadlines else None
    ok = meets_slos(lat, finished, slos, deadline)
    checks: tuple[SloCheck, ...] = ()
    if deadline is None:
        checks = check_slos(slos, {k: v[finished] for k, v in lat.items()}, itl.quantile)
    elif workload is not None:  # the SLOs judge the requests without a deadline (if any), deadlines the others
        by_slo = ~np.isfinite(deadline)
        if by_slo.any():
            checks = check_slos(slos, {k: v[finished & by_slo] for k, v in lat.items()}, itl.quantile)
        checks += deadline_checks(workload, lat["e2e"], finished)
    return Summary(
        num_requests=n, num_finished=n_fin, num_rejected=num_rejected, rejected_by_reason=rejected_by_reason,
        makespan_s=makespan_s,
        ttft_s=latency_stats(lat["ttft"][finished]), tpot_s=latency_stats(lat["tpot"][finished]),
        itl_s=itl_stats(itl), e2e_s=latency_stats(lat["e2e"][finished]),
        queue_delay_s=latency_stats(lat["queue"][finished]),
        throughput_output_tokens_per_s=output_tokens / span, throughput_input_tokens_per_s=input_tokens / span,
        throughput_requests_per_s=n_fin / span, goodput_requests_per_s=int(ok.sum()) / span,
        slo_attainment=float(ok.sum()) / n if checks and n else None, slos=checks,
        slos_met=all(c.met for c in checks) and num_rejected == 0 if checks else None,
        sim=sim, bench=bench,
    )


def summarize(res: SimResult, slos: tuple[SLO, ...] = ()) -> Summary:
    t = res.table
    lat = request_latencies(t)
    finished = t.status == FINISHED
    span = max(res.makespan_s, 1e-9)
    out_tokens = int(t.out_done[finished].sum())
    cost_per_hour, idle_j = _device_cost_and_idle(res)
    energy = sum(r.energy_j for r in res.replicas) + idle_j
    rejected = t.status == REJECTED
    reasons = {r.text: int((t.reject_reason[rejected] == r).sum()) for r in RejectReason if r}
    sim = SimStats(
        num_preemptions=int(t.num_preemptions.sum()),
        prefix_cache_hit_tokens=int(t.prefix_hit_tokens.sum()),
        cost_per_hour=cost_per_hour,
        cost_per_million_output_tokens=(
            None if cost_per_hour is None or out_tokens == 0 else cost_per_hour * span / 3600 / out_tokens * 1e6
        ),
        energy_j=energy,
        energy_j_per_output_token=energy / out_tokens if out_tokens else None,
        utilization=tuple(r.busy_s / span for r in res.replicas),
        num_replicas=len(res.replicas),
        num_steps=res.num_steps,
        policy=res.policy,
        router=res.router,
        overload=overload_note(t.arrival[finished], lat["queue"][finished], int(finished.sum()), len(t)),
        host_copied_tokens=sum(r.host_loaded_tokens + r.swapped_tokens for r in res.replicas),
    )
    summary = measured_summary(lat, finished, slos, res.itl, makespan_s=res.makespan_s,
                               input_tokens=int(t.input[finished].sum()), output_tokens=out_tokens,
                               num_rejected=int(rejected.sum()),
                               rejected_by_reason={k: v for k, v in reasons.items() if v}, sim=sim, workload=t.wl)
    if len(t.wl.class_names) < 2:
        return summary
    ok = meets_slos(lat, finished, slos, t.wl.deadline_s) if summary.slos else None
    return replace(summary, classes=class_summaries(t.wl, lat, finished, ok, t.out_done, t.arrival, res.makespan_s))


def _device_cost_and_idle(res: SimResult) -> tuple[float | None, float]:
    """The fleet's $/h (None: a device has no price) and the joules its devices idled. An autoscaled run pays
    (and idles) each replica only while it is on: billed seconds, cold starts included. Replicas co-located on
    one device (``gpu_of``) pay for it once, and it idles only while none of them runs a step."""
    span = max(res.makespan_s, 1e-9)
    on_s = [res.makespan_s] * len(res.replicas)
    if res.scaler is not None:
        on_s[: len(res.scaler.billed_s)] = res.scaler.billed_s
    devices: dict[int, list[int]] = {}
    for k in range(len(res.replicas)):
        devices.setdefault(k if res.gpu_of is None else res.gpu_of[k], []).append(k)
    prices = [res.replicas[ks[0]].dep.price_per_hour for ks in devices.values()]
    paid = [p or 0.0 for p in prices]
    if res.scaler is not None:  # each paid for the share of the run it was on
        paid = [p * on_s[ks[0]] / span for p, ks in zip(paid, devices.values(), strict=True)]
    cost = None if any(p is None for p in prices) else float(sum(paid))
    idle_j = sum(res.replicas[ks[0]].cost.idle_w * max(on_s[ks[0]] - sum(res.replicas[k].busy_s for k in ks), 0.0)
                 for ks in devices.values())
    return cost, idle_j


def overload_note(arrival: npt.NDArray[np.float64], queue: npt.NDArray[np.float64], n_finished: int,
                  n: int) -> str | None:
    """A warning when the fleet cannot keep up: queueing delay grows from the first quarter of arrivals
    to the last, so every latency figure depends on how long the run lasted, not on the fleet alone."""
    if n_finished < 8:
        return None if n_finished == n else f"only {n_finished} of {n} requests finished"
    order = np.argsort(arrival, kind="stable")
    quarter = max(len(order) // 4, 1)
    first = float(np.median(queue[order[:quarter]]))
    last = float(np.median(queue[order[-quarter:]]))
    if last > 1.0 and last > 4.0 * max(first, 0.05):
        return (f"overloaded: the median queueing delay grows from {first:,.1f} s (first quarter of arrivals) to "
                f"{last:,.1f} s (last quarter), so latencies grow with the run's length; "
                "add replicas or lower the rate")
    return None
