"""What speculative decoding costs a replica: the drafter's memory and its passes, and a verification step.

Drafting: a head (EAGLE, EAGLE-3) or MTP module is priced as a model of its own decoder layers on the
target's device, its LM head over its own vocabulary (or the target's, which it shares); a draft model as
itself; n-gram lookup runs on the host and is not priced on the device. Each step runs ``k`` draft passes
over the sequences that sampled. Verification is the target's forward over ``k + 1`` tokens per sequence:
a chunk of ``k + 1`` new tokens on a cached context, with logits on every one of them (the scheduler hands
the step that chunk; ``StepCost`` prices it like any other).
"""

from __future__ import annotations

from inferplan.perf.deployment import Deployment
from inferplan.perf.drafter import drafter_model
from inferplan.perf.step_cost import BatchShape, StepCost
from inferplan.specs.catalog import get_weight_format


class DraftCost:
    """Prices a step's draft passes on the replica's devices (nothing for n-gram lookup)."""

    def __init__(self, dep: Deployment) -> None:
        assert dep.speculation is not None
        self.k = dep.speculation.k
        drafter = drafter_model(dep)
        self.cost: StepCost | None = None
        if drafter is not None:
            tp = dep.tp if drafter.num_attention_heads % dep.tp == 0 else 1
            self.cost = StepCost(Deployment(model=drafter, device=dep.device, weights=get_weight_format("bf16"),
                                            kv=dep.kv, tp=tp, limits=dep.limits, profile=dep.profile,
                                            engine=dep.serving_engine))

    def seconds(self, rows: int, ctx_tokens: int) -> tuple[float, float]:
        """(seconds, of them in kernels) of ``k`` draft passes over ``rows`` sequences reading ``ctx_tokens``
        keys in all: the drafter's kernels and collectives, without a step's host overhead (the passes run
        inside the target's step)."""
        if self.cost is None or rows == 0:
            return 0.0, 0.0
        d, e, h, a, c, _ = self.cost.groups(BatchShape.decodes(rows, ctx_tokens))
        busy = d + e + h + a
        return self.k * (busy + c), self.k * busy


def verify_shape(batch: int, ctx_tokens: int, k: int) -> BatchShape:
    """``batch`` sequences each verifying ``k`` drafted tokens after their last one, reading ``ctx_tokens``
    cached keys in all: ``k + 1`` new tokens per sequence, each with its logits."""
    q = k + 1
    return BatchShape(prefill_tokens=batch * q, prefill_pairs=q * ctx_tokens + batch * q * (q + 1) / 2,
                      prefill_ctx_tokens=ctx_tokens, num_prefills=batch, num_sampled=batch * q)


class TokenPricing:
    """Seconds and joules per output token of one sequence in a steady decode batch: a decode step, or with
    speculation a verification step and its drafts over the tokens a step gains. What ``fit`` and the
    analytical screen price; the simulator prices each step from its own rows."""

    def __init__(self, dep: Deployment, cost: StepCost) -> None:
        spec = dep.speculation
        self.cost = cost
        self.draft = DraftCost(dep) if spec else None
        self.k = spec.k if spec else 0
        self.gain = spec.mean_tokens_per_step if spec else 1.0

    def batch_limit(self, dep: Deployment, batch: int) -> int:
        """The batch the token budget allows: each sequence's drafts take budget too."""
        return min(batch, dep.group_limits.max_num_batched_tokens // (self.k + 1)) if self.draft else batch

    def seconds(self, batch: int, context: int) -> float:
        if self.draft is None:
            return self.cost.decode_seconds(batch, context)
        verify = self.cost.seconds(verify_shape(batch, batch * context, self.k))
        return (verify + self.draft.seconds(batch, batch * context)[0]) / self.gain

    def joules(self, batch: int, context: int) -> float:
        """The target's joules per token (drafting's energy is left out, as before speculation it had none)."""
        window = min(context, self.cost.window) if self.cost.window else 0
        step = (BatchShape.decodes(batch, batch * context, batch * window) if self.draft is None
                else verify_shape(batch, batch * context, self.k))
        return self.cost.cost(step)[1] / batch / self.gain
