"""The decode leap: a run of identical decode steps handled as one event, with the same result.

An optimisation, not a semantic: the replica could step one by one and produce the same
tokens at the same times (``tests/sim/test_invariants.py`` checks this by hypothesis).
When a step only decodes and its successors cannot differ until a request finishes or
something arrives, ``run_leap`` prices all of them at once with ``StepCost.decode_steps``
and ``finish_leap`` applies the rows at the end.

With an empty queue (and no sliding window) requests that finish on the way leave the
batch and the run goes on with fewer sequences. A replica fed its own arrivals goes
further: when the policy would admit the next arrival whole and the KV blocks surely
suffice, the leap takes it in, prices that step, and runs on to the arrival after (one
segment per arrival). Rows are kept in global step numbers: row i joined at step
``join[i]`` (1 for rows running when the leap began), holds ``c1[i]`` tokens after its
first step (``offset[i] = c1[i] - join[i]``) and samples its last token at ``last[i]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from inferplan.perf.step_cost import BatchShape
from inferplan.sim.policies.base import StepPlan
from inferplan.sim.state import WAITING, ReplicaState

if TYPE_CHECKING:
    from inferplan.sim.replica import ArrivalFeed, Replica

_STEP_INDEX = np.arange(2, 258)  # step numbers 2.. of a leap, sliced instead of rebuilt (spans grow 64, 256, ...)
_STEP_INDEX_M1 = _STEP_INDEX - 1
_STEP_INDEX.flags.writeable = False
_STEP_INDEX_M1.flags.writeable = False
_MAX_TAKEN_IN = 128  # requests one leap takes in before it is applied (its finished rows then leave)


@dataclass(slots=True, eq=False)
class DecodeLeap:
    """A leap in flight: when each of its steps ends, and each row's steps in it."""

    ends: np.ndarray  # end time of every step
    active: np.ndarray  # rows decoding in each step after the first (the last segment's)
    decoded: int  # tokens of those steps (the sum of ``active``)
    join: np.ndarray | None  # each row's first step, when the leap took arrivals in
    last: np.ndarray  # each row's last step

    @property
    def steps(self) -> int:
        return int(self.ends.shape[0])


# One segment of a leap, priced up to the horizon (a plain tuple: built and read once per segment, on the hot
# path): end times of its steps, the last of them, durations, joules and rows decoding of the decode steps after
# its first, its number of steps, and the joules and tokens of those decode steps.
_Priced = tuple[np.ndarray, float, np.ndarray, np.ndarray, np.ndarray, int, float, int]
# The next arrival, admitted whole at ``step`` beside ``running`` rows: (rid, prompt, blocks, running, step,
# step_cap); past step_cap the blocks of every row might not all fit.
_Arrival = tuple[int, int, int, int, int, int]


def run_leap(rep: Replica, plan: StepPlan, first: BatchShape, now: float, horizon: float) -> DecodeLeap:
    """Run ``plan`` (a decode step priced as ``first``) and the identical steps after it, up to ``horizon``:
    one segment, or one per arrival taken in. The loop's state stays in locals: this is the hot path."""
    st = rep.state
    b = st.batch
    n = b.n
    rep.mark_first_scheduled(plan, now)
    d0, j0 = rep.cost.cost(first)
    c1 = plan.num_computed_before + plan.num_new  # computed after the first step; each row then holds c1 + 1
    last = b.remaining[:n]  # steps each request takes part in: 1..last
    # crossing finishes is exact only when no router looks at this replica's load meanwhile
    through = rep.solo and not len(st.waiting) and not rep.window
    last_max = int(np.maximum.reduce(last)) if through else 0  # the last step of any row
    limit = steps_blocks_allow(st, c1, b.held[:n], last, last_max if through else int(np.minimum.reduce(last)))
    feed = rep.feed if through else None
    join: np.ndarray | None = None
    cols = _NO_COLUMNS
    offset = c1 - 1
    m0 = 1  # global number of the segment's first step
    free0 = st.pool.num_free
    prompt_blocks = 0  # blocks taken by requests admitted inside the leap
    seg = (now, d0, j0, first.prefill_tokens, first.num_decodes, n)  # the segment's first step
    all_ends: list[np.ndarray] = []
    while True:
        rows = last.shape[0]
        if through:  # rows by last step, and the sum of the offsets of sorted rows k.. (0 past the end)
            order = last.argsort(kind="stable")  # array methods: the np.* wrappers cost more than the work
            offset_tail = np.zeros(rows + 1, dtype=np.int64)
            offset_tail[:rows] = offset[order][::-1].cumsum()[::-1]
            last_sorted = last[order]
        else:
            last_sorted = offset_tail = last
        priced = _price(rep, c1, last_sorted, offset_tail, through, limit, horizon, m0, seg[0], seg[1])
        end, steps = priced[1], priced[5]
        g_end = m0 + steps - 1
        arrival = None
        if (feed is not None and steps < limit and feed.next < len(feed.times) and end > horizon
                and (join is None or rows < cols.shape[1])):
            arrival = _admissible(rep, feed, last_sorted, g_end + 1, free0 - prompt_blocks, end)
        if arrival is None:
            _allocate_blocks(st, c1, last, join, g_end)
        _record(rep, seg, priced)
        all_ends.append(priced[0])
        if arrival is None or feed is None:
            break
        rid, prompt, blocks, running, step, step_cap = arrival
        prompt_blocks += blocks
        feed.next += 1
        output = admit(rep, rid, prompt, blocks, end)
        ctx_at = int(offset_tail[rows - running]) + step * running  # keys the running rows read
        d, j = rep.cost.cost(BatchShape.prefill_beside_decodes(prompt, running, ctx_at))
        seg = (end, d, j, prompt, running, running + 1)
        if join is None:  # rows as columns of one array with room for the requests taken in
            cols = np.empty((4, rows + _MAX_TAKEN_IN), dtype=np.int64)
            cols[0, :rows], cols[1, :rows], cols[2, :rows], cols[3, :rows] = 1, c1, offset, last
        cols[:, rows] = (step, prompt, prompt - step, step + output - 1)
        join, c1, offset, last = cols[:, : rows + 1]
        m0 = step
        last_max = max(last_max, step + output - 1)
        limit = min(last_max, step_cap) - m0 + 1
        horizon = feed.times[feed.next] if feed.next < len(feed.times) else float("inf")
    ends = all_ends[0] if len(all_ends) == 1 else np.concatenate(all_ends)
    return DecodeLeap(ends, priced[4], priced[7], join, last)


_NO_COLUMNS = np.zeros((4, 0), dtype=np.int64)
_NO_COLUMNS.flags.writeable = False


def _price(rep: Replica, c1: np.ndarray, last_sorted: np.ndarray, offset_tail: np.ndarray, through: bool,
           limit: int, horizon: float, m0: int, seg_start: float, seg_d: float) -> _Priced:
    """A segment's steps, priced in growing prefixes until one passes the horizon. Its first step
    (``m0``, global number) starts at ``seg_start`` and lasts ``seg_d``; the decode steps follow."""
    rows = last_sorted.shape[0]
    ctx0 = 0 if through else int(np.add.reduce(c1))
    window, decode_steps = rep.window, rep.cost.decode_steps
    span = min(limit, 64)
    while True:
        if span <= _STEP_INDEX.shape[0] + 1:
            m, m1 = _STEP_INDEX[: span - 1], _STEP_INDEX_M1[: span - 1]  # step numbers 2.. and those minus 1
        else:
            m = np.arange(2, span + 1)
            m1 = m - 1
        if through:
            g = m if m0 == 1 else m + (m0 - 1)  # global step numbers
            gone = last_sorted.searchsorted(g, side="left")  # requests that finished before step g
            active = rows - gone
            ctx = offset_tail[gone] + g * active
        else:
            active = np.full(m.shape[0], rows, dtype=np.int64)
            ctx = ctx0 + m1 * rows
        win = _window_sums(c1, m1, window) if window else None
        buf = np.empty(2 * span + 2)  # [start, first step, the decode steps' durations] then running sums
        buf[0], buf[1] = seg_start, seg_d
        durs, joules = decode_steps(active, ctx, win, out=buf[2 : span + 1])
        ends = buf[span + 1 :]
        buf[: span + 1].cumsum(out=ends)  # sequential sums, as event-by-event
        ends = ends[1:]
        if span == limit or ends[-1] > horizon:
            break
        span = min(limit, 4 * span)
    steps = min(int(ends.searchsorted(horizon, side="right")) + 1, span)
    if steps == 1:
        return ends[:1], float(ends[0]), durs, joules, active, 1, 0.0, 0
    durs, joules, active = durs[: steps - 1], joules[: steps - 1], active[: steps - 1]
    return (ends[:steps], float(ends[steps - 1]), durs, joules, active, steps, float(np.add.reduce(joules)),
            int(np.add.reduce(active)))


def _admissible(rep: Replica, feed: ArrivalFeed, last_sorted: np.ndarray, step: int, free: int,
                seg_end: float) -> _Arrival | None:
    """The feed's next arrival, if stepping one by one would surely admit it whole at ``step`` (the
    segment ends at ``seg_end``): the arrival after it comes later, the policy admits it, and the
    ``free`` blocks surely suffice for every row until the step cap."""
    st = rep.state
    rid = feed.rids[feed.next] if feed.rids is not None else feed.next
    rows = last_sorted.shape[0]
    prompt = int(rep.table.input[rid])
    running = rows - int(last_sorted.searchsorted(step, side="left"))
    blocks = -(-prompt // st.block_size)
    spare = free - blocks
    # every row needs <= g // bs + 1 new blocks by step g: past step_cap they might not all fit
    step_cap = (spare // (rows + 1)) * st.block_size - 1 if spare > 0 else -1
    if (step_cap >= step and not (feed.next + 1 < len(feed.times) and feed.times[feed.next + 1] < seg_end)
            and not rep.reject_reason(rid) and rep.policy.admits_whole(st, prompt, running)):
        return rid, prompt, blocks, running, step, step_cap
    return None


def _allocate_blocks(st: ReplicaState, c1: np.ndarray, last: np.ndarray, join: np.ndarray | None,
                     g_end: int) -> None:
    """The leap ends at step ``g_end``: take the blocks every row needs by its last step in it."""
    b = st.batch
    held = b.held[: b.n]
    taken = np.minimum(last, g_end) if join is None else np.minimum(last, g_end) - join + 1
    # ceil((c1 - 1 + k) / bs) after k steps = (c1 + k + bs - 2) // bs
    extra = (c1 + taken + (st.block_size - 2)) // st.block_size - held
    np.maximum(extra, 0, out=extra)
    assert st.pool.take(int(np.add.reduce(extra)))
    held += extra


def _record(rep: Replica, seg: tuple[float, float, float, int, int, int], priced: _Priced) -> None:
    """A segment in the replica's series and totals: its first step, then its decode steps as one run."""
    st = rep.state
    start, d, j, prefill, decodes, running = seg
    used = st.pool.num_used  # mid-leap segments: without the decode blocks allocated when it ends
    if used > rep.max_kv_blocks_used:
        rep.max_kv_blocks_used = used
    waiting = len(st.waiting)
    ends, end, durs, joules, active, steps, decode_j, decoded = priced
    if steps > 1:
        rep.series.add_segment(start, d, prefill, decodes, running, waiting, used, j, ends[:-1], durs, active,
                               joules, busy=end - float(ends[0]), energy=decode_j, decoded=decoded)
    else:
        rep.series.add_step(start, d, prefill, decodes, running, waiting, used, j)
    rep.energy_j += j + decode_j
    rep.busy_s += end - start
    rep.num_steps += steps


def admit(rep: Replica, rid: int, prompt: int, blocks: int, when: float) -> int:
    """Admit an arrival inside a leap, as the scheduler would at ``when``: routed here, first
    scheduled then, its prompt's blocks taken, a row in the batch. Returns its output tokens."""
    t = rep.table
    t.replica[rid] = rep.index
    t.status[rid] = WAITING
    t.t_first_scheduled[rid] = when
    assert rep.state.pool.take(blocks)
    output = int(t.output[rid])
    rep.state.batch.append(rid, prompt, 0, blocks, prompt, output, float(t.t_last_token[rid]), float(t.max_itl[rid]))
    return output


def steps_blocks_allow(st: ReplicaState, c1: np.ndarray, held: np.ndarray, remaining: np.ndarray, limit: int) -> int:
    """Most steps (<= limit) whose new KV blocks fit, not counting blocks that finishing requests free.

    ``c1``: tokens computed after the first step. With prefix caching the new blocks must
    come from never-used ones, so no cached block is evicted earlier than stepping one by
    one would evict it.
    """
    bs = st.block_size
    free = st.pool.num_free_uncached if st.prefix_caching else st.pool.num_free
    if c1.shape[0] * (limit // bs + 1) <= free:  # cannot run out: every sequence needs <= that many
        return limit
    c = c1 - 1
    base = int(np.maximum(-(-(c + 1) // bs) - held, 0).sum())  # already allocated for step 1: 0

    def need(m: int) -> int:
        return int(np.maximum(-(-(c + np.minimum(m, remaining)) // bs) - held, 0).sum()) - base

    if need(limit) <= free:
        return limit
    lo, hi = 1, limit  # need(1) == 0 <= free
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if need(mid) <= free:
            lo = mid
        else:
            hi = mid - 1
    return lo


def finish_leap(rep: Replica, leap: DecodeLeap, plan: StepPlan) -> int:
    """Apply a leap of S steps: row i sampled one token in each of steps J_i .. J_i + k_i - 1 (global
    numbers). Without arrivals taken in, J_i = 1 and k_i = min(S, its outputs left); rows taken in
    had no token before. Returns how many requests finished."""
    st = rep.state
    b = st.batch
    n = b.n
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
    gaps = ends[0] - last  # NaN where the first token came in this leap (all rows taken in)
    rep.itl.add_weighted(gaps[~first])
    if join is None:
        run_max = np.zeros(steps)  # run_max[j]: longest gap over the leap's first j + 1 tokens
        if steps > 1:
            later = ends[1:] - ends[:-1]  # exactly as event-by-event subtraction gives them
            rep.itl.add_weighted(later, leap.active, count=leap.decoded)
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


def _window_sums(ctx: np.ndarray, m: np.ndarray, window: int) -> np.ndarray:
    """For each step offset m: sum over sequences of min(ctx + m, window), without an n x m matrix."""
    u = np.sort(ctx)
    prefix = np.concatenate(([0], np.cumsum(u)))
    k = np.searchsorted(u, window - m, side="left")  # sequences still under the window
    sums: np.ndarray = prefix[k] + m * k + window * (u.shape[0] - k)
    return sums
