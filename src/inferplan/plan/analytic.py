"""The analytical screen: a candidate's sustainable request rate from StepCost alone (no simulation).

For mean prompt I and output O, a replica decoding B sequences at once spends
``prefill(I) + O * t(B) / B`` seconds of device time per request, where ``t(B)`` is a
decode step of B sequences at mean context ``I + O/2``. B is the largest batch that
fits the KV cache and ``max_num_seqs`` and keeps ``t(B)`` within the TPOT objective.
Capacity = utilization headroom / that time. Used to rank thousands of candidates per
second; the survivors are measured by simulation.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from inferplan.perf.deployment import Deployment
from inferplan.perf.memory import max_concurrent_sequences, plan_memory
from inferplan.perf.speculation import TokenPricing
from inferplan.perf.step_cost import StepCost
from inferplan.plan.space import Candidate
from inferplan.sim.slo import SLO

HEADROOM = 0.8  # queueing: plan to keep replicas at most 80% busy


@dataclass(frozen=True, slots=True)
class Estimate:
    rate_per_s: float  # sustainable requests per second (0: cannot meet the SLOs)
    batch: int
    tpot_s: float
    ttft_s: float
    dollars_per_rate: float  # $/hour per request/s of capacity
    energy_j_per_token: float = float("inf")  # a decode step's energy over the tokens it produces
    quality_loss_pct: float | None = None  # the weight format's documented loss

    @property
    def feasible(self) -> bool:
        return self.rate_per_s > 0


def _threshold(slos: tuple[SLO, ...], metric: str) -> float:
    values = [s.threshold_s for s in slos if s.metric == metric]
    return min(values) if values else float("inf")


def screen(candidates: Iterable[tuple[Candidate, Deployment]], mean_input: float, mean_output: float,
           slos: tuple[SLO, ...], *,
           fresh_input: float | None = None) -> Iterator[tuple[Candidate, Deployment, Estimate]]:
    """``estimate`` for every candidate, building one StepCost per configuration: the engine limits
    (the innermost choices of the search space) do not change a step's cost, only the batch.
    ``fresh_input``: prompt tokens a request prefills (a session's turns resend the earlier ones, which a
    prefix cache holds); by default all of them."""
    costs: dict[tuple[object, ...], StepCost] = {}
    for cand, dep in candidates:
        key = (cand.device, cand.tp, cand.pp, cand.weights, cand.kv, cand.moe_split)
        cost = costs.get(key)
        if cost is None:
            cost = costs[key] = StepCost(dep)
        yield cand, dep, estimate(dep, mean_input, mean_output, slos, cost=cost, fresh_input=fresh_input)


def estimate(dep: Deployment, mean_input: float, mean_output: float, slos: tuple[SLO, ...], *,
             cost: StepCost | None = None, fresh_input: float | None = None) -> Estimate:
    """``cost``: the deployment's StepCost when the caller already has one. A speculating replica's step
    verifies ``k`` drafts per sequence and gains ``mean_tokens_per_step`` tokens each (perf/speculation.py)."""
    cost = cost or StepCost(dep)
    mem = plan_memory(dep)
    ctx = int(mean_input + mean_output / 2)
    b_max = min(dep.group_limits.max_num_seqs, max_concurrent_sequences(dep, mem, int(mean_input + mean_output)))
    tokens = TokenPricing(dep, cost)
    b_max = tokens.batch_limit(dep, b_max)
    token_s = tokens.seconds  # seconds per output token of one sequence, at a batch
    tpot_limit = min(_threshold(slos, "tpot"), _threshold(slos, "itl") / tokens.gain)  # a step's tokens come at once
    fresh = mean_input if fresh_input is None else fresh_input
    ttft = cost.prefill_seconds(max(1, int(fresh)), chunk=dep.limits.max_num_batched_tokens)
    price = dep.price_per_hour or 0.0
    single_step = token_s(1, ctx)
    if b_max < 1 or ttft > _threshold(slos, "ttft") or single_step > tpot_limit:
        return Estimate(0.0, 0, single_step, ttft, float("inf"))
    lo, hi = 1, b_max  # largest batch whose decode step meets the TPOT objective
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if token_s(mid, ctx) <= tpot_limit:
            lo = mid
        else:
            hi = mid - 1
    t_token = token_s(lo, ctx)
    per_request = ttft + mean_output * t_token / lo
    rate = HEADROOM / per_request
    return Estimate(rate, lo, t_token, ttft, price / rate, tokens.joules(lo, ctx), dep.weights.quality_loss_pct())
