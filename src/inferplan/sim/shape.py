"""What one scheduled step computes, summed for pricing: a StepPlan and its batch -> a BatchShape.

Kept apart from the replica because it is pure arithmetic over the plan's arrays (and the
hottest code after the scheduler): the replica asks it for the step's shape and whether
the steps after it may run as one leap.
"""

from __future__ import annotations

import numpy as np

from inferplan.perf.step_cost import BatchShape
from inferplan.sim.policies.base import StepPlan
from inferplan.sim.state import RunningBatch


def analyse_step(plan: StepPlan, b: RunningBatch, window: int | None, queue_empty: bool) -> tuple[BatchShape, bool]:
    """The step's BatchShape, and whether the steps after it can run as one leap.

    A leap is possible when nothing was preempted, every running request is scheduled
    and samples a token in this step, and no waiting request could be admitted later:
    the queue is empty, or (for a step that only decodes) admission is blocked for a
    reason decode steps cannot lift (no free slot, no free blocks, no budget).
    """
    n = b.n
    if plan.running_decode:  # the common case: running rows decode, admitted rows (few) follow
        return _analyse_admissions(plan, b, window, queue_empty)
    a, c = plan.num_new, plan.num_computed_before
    prompt = b.prompt[:n]
    sched = a > 0
    dec = sched & (a == 1) & (c >= prompt)
    pre = sched & ~dec
    ap, cp = a[pre], c[pre]
    cd = c[dec] + 1
    pairs = float(np.add.reduce(ap * cp) + np.add.reduce(ap * (ap + 1)) / 2)
    pairs_w = 0.0
    dwin = 0
    if window:
        below = np.minimum(ap, np.maximum(window - cp, 1) - 1)
        pairs_w = float(np.add.reduce(below * cp) + np.add.reduce(below * (below + 1)) / 2
                        + np.add.reduce((ap - below) * window))
        dwin = int(np.add.reduce(np.minimum(cd, window)))
    samples = (c + a) >= b.num_tokens[:n]
    sampled = int(np.count_nonzero(samples & sched))
    shape = BatchShape(prefill_tokens=int(np.add.reduce(ap)), prefill_pairs=pairs, prefill_pairs_window=pairs_w,
                       prefill_ctx_tokens=int(np.add.reduce(cp)), num_prefills=int(ap.shape[0]),
                       num_decodes=int(cd.shape[0]), decode_ctx_tokens=int(np.add.reduce(cd)),
                       decode_ctx_window=dwin, num_sampled=sampled)
    return shape, not plan.preempted and sampled == n and queue_empty


def _analyse_admissions(plan: StepPlan, b: RunningBatch, w: int | None, queue_empty: bool) -> tuple[BatchShape, bool]:
    """``analyse_step`` when the first ``plan.num_running`` rows all decode (or none ran): the rows
    admitted this step are summed in Python (there are few), the rest in two numpy reductions."""
    n = b.n
    n0 = plan.num_running
    c0 = plan.num_computed_before[:n0]
    num_dec = n0
    dctx = int(np.add.reduce(c0)) + n0
    dwin = int(np.add.reduce(np.minimum(c0 + 1, w))) if w else 0
    if n0 == n:
        return BatchShape.decodes(n, dctx, dwin), True
    ptok = pctx = npre = prod = tri = 0
    wprod = wtri = wrest = 0
    sampled = n0
    rows = zip(plan.num_new[n0:].tolist(), plan.num_computed_before[n0:].tolist(),
               b.prompt[n0:n].tolist(), b.num_tokens[n0:n].tolist(), strict=True)
    for a, c, prompt, total in rows:
        if a == 1 and c >= prompt:
            num_dec += 1
            dctx += c + 1
            if w:
                dwin += min(c + 1, w)
        else:
            ptok += a
            pctx += c
            npre += 1
            prod += a * c
            tri += a * (a + 1)
            if w:
                below = min(a, max(w - c, 1) - 1)
                wprod += below * c
                wtri += below * (below + 1)
                wrest += (a - below) * w
        sampled += c + a >= total
    pairs = prod + tri / 2
    pairs_w = wprod + wtri / 2 + wrest if w else 0.0
    shape = BatchShape(prefill_tokens=ptok, prefill_pairs=pairs, prefill_pairs_window=pairs_w,
                       prefill_ctx_tokens=pctx, num_prefills=npre, num_decodes=num_dec, decode_ctx_tokens=dctx,
                       decode_ctx_window=dwin, num_sampled=sampled)
    return shape, sampled == n and (npre == 0 or queue_empty)
