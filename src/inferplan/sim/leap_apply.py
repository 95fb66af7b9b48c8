"""Applying a leap when it ends: its rows' tokens, gaps and finishes, its blocks and its record.

``finish_leap`` turns the steps a leap ran (``sim/leap.py``) into the state stepping one by one
would have reached: every row's tokens and largest gap, first-token times of rows taken in,
the blocks each row needs by its last step, the open segment in the replica's series, and the
finished rows leaving in the order they would have left.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from inferplan.sim.policies.base import StepPlan
from inferplan.sim.state import ReplicaState

if TYPE_CHECKING:
    from inferplan.sim.leap import DecodeLeap, Priced, Segment
    from inferplan.sim.replica import Replica


def finish_leap(rep: Replica, leap: DecodeLeap, plan: StepPlan) -> int:
    """Apply a leap of S steps: row i sampled one token in each of steps J_i .. J_i + k_i - 1 (global
    numbers). Without arrivals taken in, J_i = 1 and k_i = min(S, its outputs left); rows taken in
    had no token before, or one from a prefill replica. Returns how many requests finished."""
    st = rep.state
    b = st.batch
    n = b.n
    _allocate_blocks(st, leap.c1, leap.last, leap.join, leap.steps)
    record_segment(rep, leap.seg, leap.priced, leap.waiting)
    ends, join = leap.ends, leap.join
    steps = ends.shape[0]
    remaining = b.remaining[:n]
    k = np.minimum(remaining, steps) if join is None else np.minimum(leap.last, steps) - join + 1
    remaining -= k
    tokens = b.num_tokens[:n]
    tokens += k
    # every row sampled in each step it ran: all but the last token computed
    np.subtract(tokens, 1, out=b.num_computed[:n])
    if st.prefix_caching:
        rep.register_prompt_blocks(plan)
    last = b.last_t[:n]
    first = np.isnan(last)
    if np.count_nonzero(first):
        rep.table.t_first_token[b.rid[:n][first]] = ends[0] if join is None else ends[join[first] - 1]
    # the gap before each row's first token here (NaN where that is its first token: fresh rows taken in)
    gaps = (ends[0] if join is None else ends[join - 1]) - last
    rep.itl.add_weighted(gaps[~first])
    if join is None:
        run_max = np.zeros(steps)  # run_max[j]: longest gap over the leap's first j + 1 tokens
        if steps > 1:
            later = ends[1:] - ends[:-1]  # exactly as event-by-event subtraction gives them
            rep.itl.add_weighted(later, leap.priced[4], count=leap.priced[7])
            np.maximum.accumulate(later, out=run_max[1:])
        last_step = k - 1
        return _end_leap(rep, leap, run_max[last_step], gaps, last_step)
    # row i's later gaps are gap[J_i - 1 .. J_i + k_i - 3], gap[s] = ends[s + 1] - ends[s]
    lo, last_step = join - 1, join + k - 2
    gap = np.empty(steps)
    np.subtract(ends[1:], ends[:-1], out=gap[:-1])  # exactly as event-by-event subtraction gives them
    gap[-1] = 0.0
    per_gap = (np.bincount(lo, minlength=steps) - np.bincount(last_step, minlength=steps)).cumsum()
    rep.itl.add_weighted(gap[:-1], per_gap[:-1], count=int(np.add.reduce(k)) - n)
    bounds = np.empty(2 * n, dtype=np.int64)
    bounds[0::2], bounds[1::2] = lo, last_step
    row_max = np.maximum.reduceat(gap, bounds)[0::2]  # max over [lo, last); a lone gap[lo] where lo == last
    row_max[k == 1] = 0.0
    return _end_leap(rep, leap, row_max, gaps, last_step)


def _end_leap(rep: Replica, leap: DecodeLeap, row_max: np.ndarray, gaps: np.ndarray, last_step: np.ndarray) -> int:
    """What applying any leap ends with: each row's largest gap (``row_max`` within the leap, ``gaps``
    before it), its last token time (``leap.ends[last_step]``), and finished rows leaving."""
    b = rep.state.batch
    n = b.n
    np.fmax(row_max, gaps, out=row_max)  # fmax: a NaN gap (no earlier token) does not count
    max_itl = b.max_itl[:n]
    np.maximum(max_itl, row_max, out=max_itl)
    b.last_t[:n] = leap.ends[last_step]
    done = (b.remaining[:n] == 0).nonzero()[0]
    if done.size > 1:  # release in the order stepping one by one would: by finishing step, then row
        done = done[last_step[done].argsort(kind="stable")]
    return rep.retire(done, b.last_t[done])


def _allocate_blocks(st: ReplicaState, c1: np.ndarray, last: np.ndarray, join: np.ndarray | None,
                     g_end: int) -> None:
    """The leap ends at step ``g_end``: take the blocks every row needs by its last step in it."""
    b = st.batch
    held = b.held[: b.n]
    taken = np.minimum(last, g_end) if join is None else np.minimum(last, g_end) - join + 1
    extra = st.blocks_of(c1 - 1 + taken) - held  # a row holds c1 - 1 + k tokens after k steps
    np.maximum(extra, 0, out=extra)
    assert st.pool.take(int(np.add.reduce(extra)))
    held += extra


def record_segment(rep: Replica, seg: Segment, priced: Priced, waiting: int) -> None:
    """A segment in the replica's series and totals: its first step, then its decode steps as one run
    (``waiting``: the queue's length through them)."""
    used = rep.state.pool.num_used  # mid-leap segments: without the decode blocks allocated when it ends
    if used > rep.max_kv_blocks_used:
        rep.max_kv_blocks_used = used
    start, d, j, prefill, decodes, running = seg
    ends, end, durs, joules, active, steps, decode_j, decoded = priced
    if steps > 1:
        rep.series.add_segment(start, d, prefill, decodes, running, waiting, used, j, ends[:-1], durs, active,
                               joules, busy=end - float(ends[0]), energy=decode_j, decoded=decoded)
    else:
        rep.series.add_step(start, d, prefill, decodes, running, waiting, used, j)
    rep.energy_j += j + decode_j
    rep.busy_s += end - start
    rep.num_steps += steps
