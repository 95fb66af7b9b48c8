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
segment per arrival). A replica behind a router that reads loads is not stopped by arrivals
either: its loads at any instant come from the leap's rows (``DecodeLeap.load``,
``sim/leap_load.py``), and a request routed to it ends the open segment at the step under
way then, or is taken in like a fed arrival (``offer_to_leap``). Rows are kept in global
step numbers: row i joined at step
``join[i]`` (1 for rows running when the leap began), holds ``c1[i]`` tokens after its
first step (``offset[i] = c1[i] - join[i]``) and samples its last token at ``last[i]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from inferplan.perf.kv_layout import KVLayout
from inferplan.perf.step_cost import BatchShape
from inferplan.sim.leap_apply import record_segment
from inferplan.sim.leap_load import SegmentLoad
from inferplan.sim.policies.base import StepPlan
from inferplan.sim.state import WAITING, ReplicaState

if TYPE_CHECKING:
    from inferplan.sim.replica import Replica

_STEP_INDEX = np.arange(2, 258)  # step numbers 2.. of a leap, sliced instead of rebuilt (spans grow 64, 256, ...)
_STEP_INDEX_M1 = _STEP_INDEX - 1
_STEP_INDEX.flags.writeable = False
_STEP_INDEX_M1.flags.writeable = False
_MAX_TAKEN_IN = 128  # requests one leap takes in before it is applied (its finished rows then leave)



# One segment of a leap, priced up to the horizon (a plain tuple: built and read once per segment, on the hot
# path): end times of its steps, the last of them, durations, joules and rows decoding of the decode steps after
# its first, its number of steps, and the joules and tokens of those decode steps.
Priced = tuple[np.ndarray, float, np.ndarray, np.ndarray, np.ndarray, int, float, int]
# A segment's first step: its start, duration, joules, prefill tokens, decodes and running requests.
Segment = tuple[float, float, float, int, int, int]
# A request admitted whole at ``step`` beside ``running`` rows: (rid, prompt, blocks, running, step, step_cap,
# ready); past step_cap the blocks of every row might not all fit. ``ready``: its prompt's KV came from a prefill
# replica with its first token, so it joins as a decode of its second token (a decode replica's admission).
_Arrival = tuple[int, int, int, int, int, int, bool]
_NO_COLUMNS = np.zeros((4, 0), dtype=np.int64)
_NO_COLUMNS.flags.writeable = False
_UNPRICED: Priced = (_NO_COLUMNS[0], 0.0, _NO_COLUMNS[0], _NO_COLUMNS[0], _NO_COLUMNS[0], 0, 0.0, 0)


@dataclass(slots=True, eq=False)
class DecodeLeap:
    """A leap in flight: its rows in global step numbers, the segments closed so far, and the open one.

    The open segment is recorded and its blocks taken when the leap is applied (``finish_leap``), so it
    may still be cut short at any of its steps (``offer_to_leap``) until then.
    """

    c1: np.ndarray  # tokens each row holds after its first step
    offset: np.ndarray  # c1 - join
    last: np.ndarray  # each row's last step
    join: np.ndarray | None  # each row's first step, once the leap took an arrival in (None: all 1)
    cols: np.ndarray  # (join, c1, offset, last) with room for rows taken in, once one was
    through: bool  # the leap runs on through rows finishing
    limit: int  # steps the open segment may run, counted from its first
    last_max: int  # the last step of any row (through)
    free: int  # blocks free for requests taken in: the pool's at the start, less their prompts
    waiting: int  # requests queued when the leap began
    seg: Segment  # the open segment's first step
    priced: Priced  # the open segment's steps
    m0: int  # the open segment's first step (global number)
    closed: list[np.ndarray]  # end times of the steps of the segments before the open one
    last_sorted: np.ndarray  # the rows' last steps in order (through; else ``last``)
    offset_tail: np.ndarray  # sums of the offsets of sorted rows k.. (through; else ``last``)
    order: np.ndarray | None = None  # the rows in the order of ``last_sorted`` (through)
    start: float = 0.0  # when the leap began: the table holds its rows' tokens up to then
    over: bool | None = None  # a row holds more blocks than its first step needs (reserving policies); when read
    seen: SegmentLoad | None = None  # the open segment's loads, once a router read them

    @property
    def steps(self) -> int:
        return self.m0 - 1 + self.priced[5]

    @property
    def end(self) -> float:
        return self.priced[1]

    @property
    def ends(self) -> np.ndarray:
        """End time of every step."""
        return np.concatenate([*self.closed, self.priced[0]]) if self.closed else self.priced[0]

    def load(self, held: np.ndarray, block_size: int, layout: KVLayout | None = None) -> SegmentLoad:
        """The open segment's loads for routers (``held``: the batch's blocks now, before the leap's own)."""
        if self.seen is None:
            if self.over is None:  # rows taken in hold just their prompt's blocks: checking the first ones suffices
                self.over = layout is not None or bool((held > (self.c1 + (block_size - 1)) // block_size).any())
            priced = self.priced
            self.seen = SegmentLoad(priced[0], self.m0, self.seg[5], priced[4],
                                    (self.c1, self.join, held, self.order, self.over), block_size, layout)
        return self.seen


def run_leap(rep: Replica, plan: StepPlan, first: BatchShape, now: float, horizon: float) -> DecodeLeap:
    """Run ``plan`` (a decode step priced as ``first``) and the identical steps after it, up to ``horizon``:
    one segment, or one per arrival of the replica's own feed taken in."""
    st = rep.state
    b = st.batch
    n = b.n
    rep.mark_first_scheduled(plan, now)
    d0, j0 = rep.cost.cost(first)
    c1 = plan.num_computed_before + plan.num_new  # computed after the first step; each row then holds c1 + 1
    last = b.remaining[:n]  # steps each request takes part in: 1..last
    # crossing finishes is exact when every load a router reads comes from the leap's rows (with prefix
    # caching a finished request's blocks may stay in use by others, so only where no router reads them)
    through = not len(st.waiting) and not rep.window and (rep.solo or not st.prefix_caching)
    last_max = int(np.maximum.reduce(last)) if through else 0
    limit = steps_blocks_allow(st, c1, b.held[:n], last, last_max if through else int(np.minimum.reduce(last)))
    seg = (now, d0, j0, first.prefill_tokens, first.num_decodes, n)
    leap = DecodeLeap(c1, c1 - 1, last, None, _NO_COLUMNS, through, limit, last_max, st.pool.num_free,
                      len(st.waiting), seg, _UNPRICED, 1, [], last, last, start=now)
    _price_open(rep, leap, horizon)
    feed = rep.feed if through else None
    while feed is not None and feed.next < len(feed.times) and leap.priced[1] > horizon and _has_room(leap):
        later = feed.times[feed.next + 1] if feed.next + 1 < len(feed.times) else float("inf")
        arrival = _admissible(rep, leap, feed.rid(feed.next), later)
        if arrival is None:
            break
        feed.next += 1
        _take_in(rep, leap, arrival, later)
        horizon = later
    return leap


def offer_to_leap(rep: Replica, rid: int, now: float, next_arrival: float, horizon: float) -> bool:
    """``rid`` was routed here at ``now``, inside the leap. The open segment ends with the step under way
    then; if stepping one by one would surely admit the request whole at the next step, the leap takes it
    in and runs on to ``horizon`` (True), else it ends there and the caller queues the request (False)."""
    leap = rep.leap
    assert leap is not None
    priced = leap.priced
    keep = int(priced[0].searchsorted(now, side="right")) + 1  # the steps up to the one under way now
    assert now >= leap.seg[0] and keep <= priced[5]
    if keep < priced[5]:
        leap.priced = _truncate(priced, keep)
        leap.seen = None
    # queued ones go first; a prefill replica's rows stop at their first token, which admit does not know
    if rep.state.role == "prefill" or len(rep.state.waiting) or not _has_room(leap):
        return False
    arrival = _admissible(rep, leap, rid, next_arrival)
    if arrival is None:
        return False
    _take_in(rep, leap, arrival, horizon)
    return True


def extend_leap(rep: Replica, now: float, horizon: float) -> bool:
    """The open segment ended at ``now``, at the horizon or at a step a routed request cut it to. Where
    stepping one by one would go on as the leap does, go on instead of applying it: price further (the
    queue is empty), or take in the one request queued (it arrived in the last step). False: apply it."""
    leap = rep.leap
    assert leap is not None and now == leap.end
    if rep.state.role == "prefill" or not _has_room(leap):
        return False
    waiting = rep.state.waiting
    if not len(waiting):
        _price_open(rep, leap, horizon)
        return leap.end > now
    if len(waiting) > 1:
        return False
    arrival = _admissible(rep, leap, waiting.peek(), now)
    if arrival is None:
        return False
    waiting.pop()
    _take_in(rep, leap, arrival, horizon)
    return True


def _has_room(leap: DecodeLeap) -> bool:
    """The open segment stopped short of its limit, and the leap has a column left for one more row."""
    return (leap.through and leap.priced[5] < leap.limit
            and (leap.join is None or leap.last.shape[0] < leap.cols.shape[1]))


def _take_in(rep: Replica, leap: DecodeLeap, arrival: _Arrival, horizon: float) -> None:
    """Close the open segment, admit ``arrival`` at the step after it and price the new segment to ``horizon``."""
    rid, prompt, blocks, running, step, step_cap, ready = arrival
    record_segment(rep, leap.seg, leap.priced, leap.waiting)
    leap.closed.append(leap.priced[0])
    leap.free -= blocks
    end = leap.priced[1]
    c1 = prompt + 1 if ready else prompt  # tokens whose KV is there after its first step here
    left = admit(rep, rid, c1, blocks, end, ready)
    rows = leap.last.shape[0]
    ctx_at = int(leap.offset_tail[rows - running]) + step * running  # keys the running rows read
    if ready:  # every row decodes, the new one its second token
        d, j = rep.cost.cost(BatchShape.decodes(running + 1, ctx_at + c1))
        leap.seg = (end, d, j, 0, running + 1, running + 1)
    else:
        d, j = rep.cost.cost(BatchShape.prefill_beside_decodes(prompt, running, ctx_at))
        leap.seg = (end, d, j, prompt, running, running + 1)
    cols = leap.cols
    if leap.join is None:  # rows as columns of one array with room for the requests taken in
        leap.cols = cols = np.empty((4, rows + _MAX_TAKEN_IN), dtype=np.int64)
        cols[0, :rows], cols[1, :rows], cols[2, :rows], cols[3, :rows] = 1, leap.c1, leap.offset, leap.last
    cols[:, rows] = (step, c1, c1 - step, step + left - 1)
    leap.join, leap.c1, leap.offset, leap.last = cols[:, : rows + 1]
    leap.m0 = step
    leap.last_max = max(leap.last_max, step + left - 1)
    leap.limit = min(leap.last_max, step_cap) - step + 1
    _price_open(rep, leap, horizon)


def _price_open(rep: Replica, leap: DecodeLeap, horizon: float) -> None:
    """Price the open segment up to ``horizon``."""
    last, through = leap.last, leap.through
    if through:  # rows by last step, and the sum of the offsets of sorted rows k.. (0 past the end)
        rows = last.shape[0]
        order = last.argsort(kind="stable")  # array methods: the np.* wrappers cost more than the work
        offset_tail = np.zeros(rows + 1, dtype=np.int64)
        offset_tail[:rows] = leap.offset[order][::-1].cumsum()[::-1]
        leap.last_sorted, leap.offset_tail, leap.order = last[order], offset_tail, order
    leap.seen = None
    leap.priced = _price(rep, leap.c1, leap.last_sorted, leap.offset_tail, through, leap.limit, horizon, leap.m0,
                         leap.seg[0], leap.seg[1])


def _truncate(priced: Priced, steps: int) -> Priced:
    """The first ``steps`` steps of a priced segment: what pricing it to a horizon inside its step
    ``steps`` gives (the same prefix of the same running sums)."""
    ends = priced[0][:steps]
    if steps == 1:
        return ends, float(ends[0]), priced[2], priced[3], priced[4], 1, 0.0, 0
    joules, active = priced[3][: steps - 1], priced[4][: steps - 1]
    return (ends, float(ends[-1]), priced[2][: steps - 1], joules, active, steps, float(np.add.reduce(joules)),
            int(np.add.reduce(active)))


def _price(rep: Replica, c1: np.ndarray, last_sorted: np.ndarray, offset_tail: np.ndarray, through: bool,
           limit: int, horizon: float, m0: int, seg_start: float, seg_d: float) -> Priced:
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


def _admissible(rep: Replica, leap: DecodeLeap, rid: int, later: float) -> _Arrival | None:
    """``rid``, if stepping one by one would surely admit it whole at the step after the open segment
    (the next request that could join it comes at ``later`` or after): none can join it first, the
    policy admits it, and the blocks left surely suffice for every row until the step cap."""
    st, t = rep.state, rep.table
    step = leap.m0 + leap.priced[5]
    last_sorted = leap.last_sorted
    rows = last_sorted.shape[0]
    prompt = int(t.input[rid])
    ready = bool(t.kv_ready[rid])  # its prompt's KV arrived from a prefill replica (with its first token)
    if ready and (t.kv_ready[rid] != prompt or t.out_done[rid] != 1 or rid in st.swapped):
        return None
    new = 1 if ready else prompt  # tokens the admission step computes for it
    running = rows - int(last_sorted.searchsorted(step, side="left"))
    blocks = st.blocks_for(prompt + 1 if ready else prompt)
    spare = leap.free - blocks
    # every row needs <= (g // bs + 1) x pages-per-block new pages by step g: past step_cap they might not all fit
    per_block = st.layout.pages_per_block if st.layout is not None else 1
    step_cap = (spare // ((rows + 1) * per_block)) * st.block_size - 1 if spare > 0 else -1
    if (step_cap >= step and not later < leap.priced[1] and not rep.reject_reason(rid)
            and rep.policy.admits_whole(st, new, running)):
        return rid, prompt, blocks, running, step, step_cap, ready
    return None


def admit(rep: Replica, rid: int, tokens: int, blocks: int, when: float, ready: bool = False) -> int:
    """Admit a request inside a leap, as the scheduler would at ``when``: routed here, first scheduled
    then (unless it was, on a prefill replica), its blocks taken, a row in the batch holding ``tokens``
    (the prompt; for a ``ready`` request also its first output, all computed but that output). Returns
    the outputs it has left to sample."""
    t = rep.table
    t.replica[rid] = rep.index
    t.status[rid] = WAITING
    if t.t_first_scheduled[rid] != t.t_first_scheduled[rid]:  # NaN: never scheduled
        t.t_first_scheduled[rid] = when
    assert rep.state.pool.take(blocks)
    left = int(t.output[rid] - t.out_done[rid])
    rep.state.batch.append(rid, tokens, tokens - 1 if ready else 0, blocks, int(t.input[rid]), left,
                           float(t.t_last_token[rid]), float(t.max_itl[rid]))
    return left


def steps_blocks_allow(st: ReplicaState, c1: np.ndarray, held: np.ndarray, remaining: np.ndarray, limit: int) -> int:
    """Most steps (<= limit) whose new KV blocks fit, not counting blocks that finishing requests free.

    ``c1``: tokens computed after the first step. With prefix caching the new blocks must
    come from never-used ones, so no cached block is evicted earlier than stepping one by
    one would evict it.
    """
    bs = st.block_size
    free = st.pool.num_free_uncached if st.prefix_caching else st.pool.num_free
    per_block = st.layout.pages_per_block if st.layout is not None else 1
    if c1.shape[0] * (limit // bs + 1) * per_block <= free:  # cannot run out: every sequence needs <= that many
        return limit
    c = c1 - 1
    base = int(np.maximum(st.blocks_of(c + 1) - held, 0).sum())  # already allocated for step 1: 0

    def need(m: int) -> int:
        return int(np.maximum(st.blocks_of(c + np.minimum(m, remaining)) - held, 0).sum()) - base

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


def _window_sums(ctx: np.ndarray, m: np.ndarray, window: int) -> np.ndarray:
    """For each step offset m: sum over sequences of min(ctx + m, window), without an n x m matrix."""
    u = np.sort(ctx)
    prefix = np.concatenate(([0], np.cumsum(u)))
    k = np.searchsorted(u, window - m, side="left")  # sequences still under the window
    sums: np.ndarray = prefix[k] + m * k + window * (u.shape[0] - k)
    return sums
