"""Speculative decoding in the simulator: each step's drafting cost, and the tokens each verification keeps.

The scheduler hands a decoding row ``1 + k`` tokens (its last token and ``k`` drafts, as vLLM v1 schedules
``spec_token_ids``; fewer when the token budget runs short). At the step's end each such row keeps its last
token, the accepted prefix of its drafts and one token of the target's own: with a per-token acceptance
rate ``a``, the accepted count A has P(A >= j) = a^j, capped at the drafts it had and at the outputs it has
left. The KV of rejected drafts is dropped (their blocks stay held, as the engine keeps them allocated).

Randomness is seeded: each request's rate is drawn once from the workload's request ids (so it does not
depend on where the request was routed), each replica's acceptances from its own generator.
"""

from __future__ import annotations

import numpy as np

from inferplan.perf.deployment import Deployment
from inferplan.perf.speculation import DraftCost
from inferplan.perf.step_cost import BatchShape, StepCost
from inferplan.sim.policies.base import StepPlan
from inferplan.sim.state import RunningBatch
from inferplan.specs.speculation import Speculation


def request_rates(spec: Speculation, num_requests: int) -> np.ndarray:
    """Each request's acceptance rate: the measured rates resampled, a Beta around the mean, or the mean."""
    rng = np.random.default_rng([spec.seed, 0x5EC])
    if spec.measured:
        return rng.choice(np.array(spec.measured), size=num_requests)
    mean, sd = spec.acceptance, spec.acceptance_spread
    if sd == 0.0 or mean in (0.0, 1.0):
        return np.full(num_requests, mean)
    strength = mean * (1.0 - mean) / sd**2 - 1.0  # Beta(a, b) with a + b = strength has this mean and sd
    return rng.beta(mean * strength, (1.0 - mean) * strength, size=num_requests)


class SpeculativeSteps:
    """One replica's speculation: prices its steps with drafting added, and applies verifications."""

    def __init__(self, dep: Deployment, num_requests: int, replica_index: int) -> None:
        spec = dep.speculation
        assert spec is not None
        self.k = spec.k
        self.draft = DraftCost(dep)
        rates = request_rates(spec, num_requests)
        with np.errstate(divide="ignore"):  # 1 / ln(rate): -0 for rate 0 (never accepted), -inf for rate 1
            self.inv_log_rate = np.where(rates >= 1.0, -np.inf, 1.0 / np.log(rates))
        self.rng = np.random.default_rng([spec.seed, 0x5EC + 1, replica_index])
        self._rows: tuple[StepPlan, np.ndarray] | None = None  # the priced plan and its verifying rows

    def cost(self, target: StepCost, plan: StepPlan, b: RunningBatch, shape: BatchShape) -> tuple[float, float]:
        """(seconds, joules) of a step: the target's forward with logits on every drafted position, and the
        draft passes for every row that samples (they propose the next step's tokens)."""
        n = b.n
        a, c = plan.num_new, plan.num_computed_before
        verifying = ((a > 1) & (c >= b.prompt[:n])).nonzero()[0]
        self._rows = plan, verifying
        drafted = int(np.add.reduce(a[verifying])) - verifying.shape[0]
        sampling = (a > 0) & (c + a >= b.num_tokens[:n])
        rows = int(np.count_nonzero(sampling))
        seconds, joules = target.cost(shape._replace(num_sampled=shape.num_sampled + drafted))
        draft_s, draft_busy = self.draft.seconds(rows, int(np.add.reduce((c + a)[sampling])))
        return seconds + draft_s, joules + draft_s * target.idle_w + draft_busy * target.dynamic_w

    def verify(self, plan: StepPlan, b: RunningBatch) -> tuple[np.ndarray, np.ndarray]:
        """(tokens whose KV each row keeps, tokens each row emits) at the step's end: a verifying row keeps
        its last token and its accepted drafts and emits those plus one; other rows are as without drafts."""
        n = b.n
        a = plan.num_new
        rows = self._rows
        verifying = rows[1] if rows is not None and rows[0] is plan else (
            (a > 1) & (plan.num_computed_before >= b.prompt[:n])).nonzero()[0]
        kept = a.copy()
        emitted = np.ones(n, dtype=np.int64)
        if verifying.shape[0]:
            u = 1.0 - self.rng.random(verifying.shape[0])  # in (0, 1]: its log is finite
            run = np.fmin(np.floor(np.log(u) * self.inv_log_rate[b.rid[verifying]]), self.k)  # P(run >= j) = a^j
            accepted = np.minimum(run.astype(np.int64), np.minimum(a[verifying], b.remaining[verifying]) - 1)
            kept[verifying] = 1 + accepted
            emitted[verifying] = 1 + accepted
        return kept, emitted
