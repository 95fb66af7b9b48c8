"""A replica: an engine (policy + KV blocks) on one deployment, advanced step by step.

``start_step`` asks the policy for a StepPlan and prices it with StepCost;
``finish_step`` applies it at the step's end: computed tokens advance, every
request whose prompt is complete samples a token (first token or one more
inter-token gap), finished requests free their blocks.
"""

from __future__ import annotations

import numpy as np

from inferplan.errors import InputError
from inferplan.perf.deployment import Deployment
from inferplan.perf.memory import plan_memory
from inferplan.perf.step_cost import BatchShape, StepCost
from inferplan.sim.metrics import LogHistogram, ReplicaSeries
from inferplan.sim.policies.base import EnginePolicy, StepPlan
from inferplan.sim.state import FINISHED, PENDING, WAITING, RejectReason, RequestTable


class ArrivalFeed:
    """One replica's arrivals in order (times, and request ids unless they are 0, 1, 2, ...) and the next
    one not yet routed. The replica may take arrivals in itself; the event loop routes the others, and a
    routed arrival is one whose status is no longer pending."""

    __slots__ = ("times", "rids", "next")

    def __init__(self, times: list[float], rids: list[int] | None = None) -> None:
        self.times = times
        self.rids = rids
        self.next = 0

    def rid(self, k: int) -> int:
        return self.rids[k] if self.rids is not None else k

    def next_time(self, status: np.ndarray) -> float:
        """When the first arrival not yet routed comes (moving past those the loop routed)."""
        k = self.next
        while k < len(self.times) and status[self.rid(k)] != PENDING:
            k += 1
        self.next = k
        return self.times[k] if k < len(self.times) else float("inf")


class Replica:
    def __init__(
        self,
        index: int,
        dep: Deployment,
        policy: EnginePolicy,
        table: RequestTable,
        *,
        itl: LogHistogram,
        bucket_s: float,
        max_waiting: int = 0,
        priority: bool = False,
        leap: bool = True,
        solo: bool = True,
        role: str = "both",
    ) -> None:
        mem = plan_memory(dep)
        if not mem.fits:
            raise InputError(
                f"{dep.describe()} does not fit in memory (short by {mem.shortfall_bytes / 2**30:.1f} GiB); "
                f"run `inferplan fit {dep.model.name} {dep.device.name}` to see what would"
            )
        self.index = index
        self.dep = dep
        self.policy = policy
        self.table = table
        self.state = policy.state_for(table, dep.group_limits, mem.num_kv_blocks, priority=priority, role=role)
        self.state.seq_block_limit = min(self.state.seq_block_limit, mem.blocks_per_cache)
        self.handoffs: list[tuple[int, float]] = []  # prefill role: (request, first-token time) to transfer
        self.cost = StepCost(dep)
        self.window = dep.model.sliding_window if dep.model.num_sliding_layers else None
        self.max_waiting = max_waiting
        self.itl = itl
        self.series = ReplicaSeries(bucket_s)
        self.busy = False
        self.plan: StepPlan | None = None
        # every running row sampled in the last step (set after a leap): the next schedule need not check them
        self.rows_decoding = False
        self.leap_steps = 0  # steps being run as one event (0: a single step)
        self.allow_leap = leap
        self.solo = solo  # no router reads its load between events (a lone replica, or round-robin)
        self.leap_ends = np.zeros(0)
        self.leap_active = np.zeros(0, dtype=np.int64)
        self.leap_decoded = 0  # tokens the leap's steps after the first decode (the sum of leap_active)
        self.leap_join: np.ndarray | None = None  # leaps that took arrivals in: each row's first step (global)
        self.leap_last = np.zeros(0, dtype=np.int64)  # ... and its last step
        # set when no router reads this replica's load (a lone replica, or round-robin; then ``solo``):
        # its arrivals, which it may take in inside a leap
        self.feed: ArrivalFeed | None = None
        self.busy_s = 0.0
        self.energy_j = 0.0
        self.num_steps = 0
        self.max_kv_blocks_used = 0
        self._reasons: np.ndarray | None = None  # why each request of the table cannot run here (0: it can)

    # ---- load, for routers -----------------------------------------------------------------
    @property
    def num_outstanding(self) -> int:
        return self.state.batch.n + len(self.state.waiting)

    @property
    def kv_usage(self) -> float:
        pool = self.state.pool
        return pool.num_used / pool.num_blocks

    def reject_reason(self, rid: int) -> int:
        if self.max_waiting and len(self.state.waiting) >= self.max_waiting:
            return RejectReason.QUEUE_FULL
        if self._reasons is None:  # once, for every request (after the limits are final)
            self._reasons = self.policy.reject_reasons(self.state)
        return int(self._reasons[rid])

    def enqueue(self, rid: int) -> None:
        self.state.waiting.push(rid)

    # ---- stepping -------------------------------------------------------------------------------
    def start_step(self, now: float, horizon: float = float("inf")) -> float | None:
        """Schedule and price the next step; returns when it ends, or None when there is nothing to run.

        A pure-decode step whose successors cannot differ until a request finishes or
        something arrives (``horizon``) is run together with them as one event: the
        same tokens at the same times as stepping one by one, for one scheduler call.
        """
        plan = self.policy.schedule(self.state, rows_decoding=self.rows_decoding)
        self.rows_decoding = False
        if plan.is_empty:
            self.busy, self.plan = False, None
            return None
        shape, leapable = self._analyse(plan)
        if leapable and self.allow_leap:
            return self._start_leap(plan, shape, now, horizon)
        dur, joules = self.cost.cost(shape)
        self._mark_first_scheduled(plan, now)
        pool = self.state.pool
        used = pool.num_used
        self.max_kv_blocks_used = max(self.max_kv_blocks_used, used)
        self.series.add_step(now, dur, shape.prefill_tokens, shape.num_decodes, self.state.batch.n,
                             len(self.state.waiting), used, joules)
        self.busy, self.plan = True, plan
        self.busy_s += dur
        self.energy_j += joules
        self.num_steps += 1
        return now + dur

    def _start_leap(self, plan: StepPlan, first: BatchShape, now: float, horizon: float) -> float:
        """Run this step and the identical decode steps after it as one event, up to ``horizon``.

        With an empty queue (and no sliding window), requests that finish on the way simply
        leave the batch: the run goes on with fewer sequences until the next arrival. A lone
        replica fed its arrivals (``feed``) goes further: when the policy would admit the
        arrival whole in the next step and the KV blocks surely suffice, it takes the arrival
        in, prices that step, and runs on to the arrival after (one segment per arrival). The
        rows are applied once, at the end (``_finish_leap``).
        """
        st = self.state
        b, pool = st.batch, st.pool
        n = b.n
        self._mark_first_scheduled(plan, now)
        d0, j0 = self.cost.cost(first)
        c1 = plan.num_computed_before + plan.num_new  # computed after the first step; each row then holds c1 + 1
        r = b.remaining[:n]  # steps each request takes part in: 1..r
        # crossing finishes is exact only when no router looks at this replica's load meanwhile
        through_finishes = self.solo and not len(st.waiting) and not self.window
        last_max = int(np.maximum.reduce(r)) if through_finishes else 0  # the last step of any row
        limit = self._steps_blocks_allow(c1, b.held[:n], r, last_max if through_finishes
                                         else int(np.minimum.reduce(r)))
        feed = self.feed if through_finishes else None
        # rows in global step numbers: joined (first step) at step J, last step L, offset a = c1 - J
        join: np.ndarray | None = None
        cols = np.zeros((4, 0), dtype=np.int64)
        offset = c1 - 1
        last_step = r
        seg_start, seg_d, seg_j = now, d0, j0  # this segment's first step: start, duration, joules
        seg_prefill, seg_decodes, seg_running = first.prefill_tokens, first.num_decodes, n
        m0 = 1  # global number of the segment's first step
        free0 = pool.num_free
        prompt_blocks = 0  # blocks taken by requests admitted inside the leap
        all_ends: list[np.ndarray] = []
        while True:
            rows = last_step.shape[0]
            if through_finishes:  # array methods: the np.* wrappers cost more than the work at these sizes
                order = last_step.argsort(kind="stable")
                last_sorted = last_step[order]
                offset_tail = np.zeros(rows + 1, dtype=np.int64)  # sum of offsets over sorted rows k.. (0 past the end)
                offset_tail[:rows] = offset[order][::-1].cumsum()[::-1]
            else:
                ctx0 = int(np.add.reduce(c1))
            span = min(limit, 64)
            while True:  # price a growing prefix of the segment until it passes the horizon
                if span <= _STEP_INDEX.shape[0] + 1:
                    m, m1 = _STEP_INDEX[: span - 1], _STEP_INDEX_M1[: span - 1]  # step numbers 2.. and those minus 1
                else:
                    m = np.arange(2, span + 1)
                    m1 = m - 1
                if through_finishes:
                    g = m if m0 == 1 else m + (m0 - 1)  # global step numbers
                    gone = last_sorted.searchsorted(g, side="left")  # requests that finished before step g
                    active = rows - gone
                    ctx = offset_tail[gone] + g * active
                else:
                    active = np.full(m.shape[0], n, dtype=np.int64)
                    ctx = ctx0 + m1 * n
                win = _window_sums(c1, m1, self.window) if self.window else None
                buf = np.empty(2 * span + 2)  # [start, first step, the decode steps' durations] then running sums
                buf[0], buf[1] = seg_start, seg_d
                durs, joules = self.cost.decode_steps(active, ctx, win, out=buf[2 : span + 1])
                ends = buf[span + 1 :]
                buf[: span + 1].cumsum(out=ends)  # sequential sums, as event-by-event
                ends = ends[1:]
                if span == limit or ends[-1] > horizon:
                    break
                span = min(limit, 4 * span)
            steps = min(int(ends.searchsorted(horizon, side="right")) + 1, span)
            seg_end = float(ends[steps - 1])
            if steps > 1:
                durs, joules, active = durs[: steps - 1], joules[: steps - 1], active[: steps - 1]
                decode_j = float(np.add.reduce(joules))
                decoded = int(np.add.reduce(active))
            else:
                decode_j, decoded = 0.0, 0
            g_end = m0 + steps - 1
            # ---- take the next arrival in, if stepping one by one would surely admit it whole
            take_in = (feed is not None and steps < limit and feed.next < len(feed.times)
                       and ends[steps - 1] > horizon and (join is None or rows < cols.shape[1]))
            if take_in:
                assert feed is not None
                rid = feed.rid(feed.next)
                admit_step = g_end + 1
                prompt = int(self.table.input[rid])
                running = rows - int(last_sorted.searchsorted(admit_step, side="left"))
                blocks = -(-prompt // st.block_size)
                spare = free0 - prompt_blocks - blocks
                # every row needs <= g // bs + 1 new blocks by step g: past step_cap they might not all fit
                step_cap = (spare // (rows + 1)) * st.block_size - 1 if spare > 0 else -1
                take_in = (step_cap >= admit_step
                           and not (feed.next + 1 < len(feed.times) and feed.times[feed.next + 1] < seg_end)
                           and not self.reject_reason(rid) and self.policy.admits_whole(st, prompt, running))
            if not take_in:  # the leap ends here: blocks every row needs by its last step in it
                # ceil((c1 - 1 + k) / bs) after k steps = (c1 + k + bs - 2) // bs
                held = b.held[: b.n]
                taken = np.minimum(last_step, g_end) if join is None else np.minimum(last_step, g_end) - join + 1
                extra = (c1 + taken + (st.block_size - 2)) // st.block_size - held
                np.maximum(extra, 0, out=extra)
                assert pool.take(int(np.add.reduce(extra)))
                held += extra
            used = pool.num_used  # mid-leap segments: without the decode blocks allocated when it ends
            if used > self.max_kv_blocks_used:
                self.max_kv_blocks_used = used
            self.series.add_step(seg_start, seg_d, seg_prefill, seg_decodes, seg_running, len(st.waiting), used, seg_j)
            if steps > 1:
                self.series.add_decode_run(ends[: steps - 1], durs, active, len(st.waiting), used, joules,
                                           first_start=float(ends[0]), last_start=float(ends[steps - 2]),
                                           busy=seg_end - float(ends[0]), energy=decode_j, decoded=decoded)
            self.energy_j += seg_j + decode_j
            self.busy_s += seg_end - seg_start
            self.num_steps += steps
            all_ends.append(ends[:steps])
            if not take_in or feed is None:
                break
            prompt_blocks += blocks
            feed.next += 1
            output = self._take_in(rid, prompt, blocks, seg_end)
            ctx_at = int(offset_tail[rows - running]) + admit_step * running  # keys the running rows read
            shape = BatchShape(prompt, prompt * (prompt + 1) / 2, 0.0, 0, 1, running, ctx_at, 0, running + 1)
            seg_d, seg_j = self.cost.cost(shape)
            seg_start, seg_prefill, seg_decodes, seg_running = seg_end, prompt, running, running + 1
            if join is None:  # rows as columns of one array with room for the requests taken in
                cols = np.empty((4, rows + _MAX_TAKEN_IN), dtype=np.int64)
                cols[0, :rows], cols[1, :rows], cols[2, :rows], cols[3, :rows] = 1, c1, offset, last_step
            cols[:, rows] = (admit_step, prompt, prompt - admit_step, admit_step + output - 1)
            join, c1, offset, last_step = cols[:, : rows + 1]
            m0 = admit_step
            last_max = max(last_max, admit_step + output - 1)
            limit = min(last_max, step_cap) - m0 + 1
            horizon = feed.times[feed.next] if feed.next < len(feed.times) else float("inf")
        ends = all_ends[0] if len(all_ends) == 1 else np.concatenate(all_ends)
        steps = ends.shape[0]
        self.leap_ends = ends
        self.leap_active = active
        self.leap_decoded = decoded
        self.leap_join = join
        self.leap_last = last_step
        self.busy, self.plan, self.leap_steps = True, plan, steps
        return float(ends[-1])

    def _take_in(self, rid: int, prompt: int, blocks: int, when: float) -> int:
        """Admit an arrival inside a leap, as the scheduler would at ``when``: routed here, first
        scheduled then, its prompt's blocks taken, a row in the batch. Returns its output tokens."""
        t = self.table
        t.replica[rid] = self.index
        t.status[rid] = WAITING
        t.t_first_scheduled[rid] = when
        assert self.state.pool.take(blocks)
        output = int(t.output[rid])
        self.state.batch.append(rid, prompt, 0, blocks, prompt, output, float(t.t_last_token[rid]),
                                float(t.max_itl[rid]))
        return output

    def _steps_blocks_allow(self, c1: np.ndarray, held: np.ndarray, remaining: np.ndarray, limit: int) -> int:
        """Most steps (<= limit) whose new KV blocks fit, not counting blocks that finishing requests free.

        ``c1``: tokens computed after the first step. With prefix caching the new blocks must
        come from never-used ones, so no cached block is evicted earlier than stepping one by
        one would evict it.
        """
        st = self.state
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

    def _analyse(self, plan: StepPlan) -> tuple[BatchShape, bool]:
        """The step's BatchShape, and whether the steps after it can run as one leap.

        A leap is possible when nothing was preempted, every running request is scheduled
        and samples a token in this step, and no waiting request could be admitted later:
        the queue is empty, or (for a step that only decodes) admission is blocked for a
        reason decode steps cannot lift (no free slot, no free blocks, no budget).
        """
        b = self.state.batch
        n = b.n
        a, c = plan.num_new, plan.num_computed_before
        prompt = b.prompt[:n]
        w = self.window
        if plan.running_decode:  # the common case: running rows decode, admitted rows (few) follow
            return self._analyse_admissions(plan, n, w)
        sched = a > 0
        dec = sched & (a == 1) & (c >= prompt)
        pre = sched & ~dec
        ap, cp = a[pre], c[pre]
        cd = c[dec] + 1
        pairs = float(np.add.reduce(ap * cp) + np.add.reduce(ap * (ap + 1)) / 2)
        pairs_w = 0.0
        dwin = 0
        if w:
            below = np.minimum(ap, np.maximum(w - cp, 1) - 1)
            pairs_w = float(np.add.reduce(below * cp) + np.add.reduce(below * (below + 1)) / 2
                            + np.add.reduce((ap - below) * w))
            dwin = int(np.add.reduce(np.minimum(cd, w)))
        samples = (c + a) >= b.num_tokens[:n]
        sampled = int(np.count_nonzero(samples & sched))
        shape = BatchShape(int(np.add.reduce(ap)), pairs, pairs_w, int(np.add.reduce(cp)), int(ap.shape[0]),
                           int(cd.shape[0]), int(np.add.reduce(cd)), dwin, sampled)
        leapable = (not plan.preempted and sampled == n and len(self.state.waiting) == 0)
        return shape, leapable

    def _analyse_admissions(self, plan: StepPlan, n: int, w: int | None) -> tuple[BatchShape, bool]:
        """``_analyse`` when the first ``plan.num_running`` rows all decode (or none ran): the rows
        admitted this step are summed in Python (there are few), the rest in two numpy reductions."""
        b = self.state.batch
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
        shape = BatchShape(ptok, pairs, pairs_w, pctx, npre, num_dec, dctx, dwin, sampled)
        return shape, sampled == n and (npre == 0 or len(self.state.waiting) == 0)

    def _mark_first_scheduled(self, plan: StepPlan, now: float) -> None:
        t = self.table
        if plan.running_decode:  # rows running before this step were scheduled before: only admissions can be new
            first = t.t_first_scheduled
            for rid in plan.rids[plan.num_running :].tolist():
                if first[rid] != first[rid]:  # NaN: never scheduled
                    first[rid] = now
            return
        sched = plan.rids[plan.num_new > 0] if plan.total_tokens != plan.rids.shape[0] else plan.rids
        fresh = sched[np.isnan(t.t_first_scheduled[sched])]
        if fresh.shape[0]:
            t.t_first_scheduled[fresh] = now

    def finish_step(self, now: float) -> int:
        """Apply the running plan at its end time; returns how many requests finished."""
        plan = self.plan
        assert plan is not None
        if self.leap_steps:
            return self._finish_leap(plan, now)
        st, t = self.state, self.table
        b = st.batch
        n = b.n
        a = plan.num_new
        b.num_computed[:n] += a
        if st.prefix_caching:
            self._register_prompt_blocks(plan)
        s = np.nonzero((a > 0) & (b.num_computed[:n] >= b.num_tokens[:n]))[0]
        b.num_tokens[s] += 1
        b.remaining[s] -= 1
        last = b.last_t[s]
        first = np.isnan(last)
        if first.any():
            t.t_first_token[b.rid[s[first]]] = now
        later = s[~first]
        if later.size:
            gaps = now - last[~first]
            self.itl.add(gaps)
            b.max_itl[later] = np.maximum(b.max_itl[later], gaps)
        b.last_t[s] = now
        num_done = self._retire(s[b.remaining[s] == 0], now)
        self.plan = None
        self.busy = False
        return num_done

    def _finish_leap(self, plan: StepPlan, now: float) -> int:
        """Apply a leap of S steps: row i sampled one token in each of steps J_i .. J_i + k_i - 1 (global
        numbers). Without arrivals taken in, J_i = 1 and k_i = min(S, its outputs left); rows taken in
        had no token before."""
        st = self.state
        b = st.batch
        n = b.n
        ends = self.leap_ends
        steps = ends.shape[0]
        join = self.leap_join
        remaining = b.remaining[:n]
        k = np.minimum(remaining, steps) if join is None else np.minimum(self.leap_last, steps) - join + 1
        remaining -= k
        tokens = b.num_tokens[:n]
        tokens += k
        # every row sampled in each step it ran: all but the last token computed
        np.subtract(tokens, 1, out=b.num_computed[:n])
        if st.prefix_caching:
            self._register_prompt_blocks(plan)
        last = b.last_t[:n]
        first = np.isnan(last)
        if np.count_nonzero(first):
            self.table.t_first_token[b.rid[:n][first]] = ends[0] if join is None else ends[join[first] - 1]
        gaps = ends[0] - last  # NaN where the first token came in this leap (all rows taken in)
        self.itl.add_weighted(gaps[~first])
        if join is None:
            run_max = np.zeros(steps)  # run_max[j]: longest gap over the leap's first j + 1 tokens
            if steps > 1:
                later = ends[1:] - ends[:-1]  # exactly as event-by-event subtraction gives them
                self.itl.add_weighted(later, self.leap_active, count=self.leap_decoded)
                np.maximum.accumulate(later, out=run_max[1:])
            last_step = k - 1
            return self._end_leap(run_max[last_step], gaps, last_step)
        # row i's later gaps are gap[J_i - 1 .. J_i + k_i - 3], gap[s] = ends[s + 1] - ends[s]
        lo, last_step = join - 1, join + k - 2
        gap = np.empty(steps)
        np.subtract(ends[1:], ends[:-1], out=gap[:-1])  # exactly as event-by-event subtraction gives them
        gap[-1] = 0.0
        per_gap = (np.bincount(lo, minlength=steps) - np.bincount(last_step, minlength=steps)).cumsum()
        self.itl.add_weighted(gap[:-1], per_gap[:-1], count=int(np.add.reduce(k)) - n)
        bounds = np.empty(2 * n, dtype=np.int64)
        bounds[0::2], bounds[1::2] = lo, last_step
        row_max = np.maximum.reduceat(gap, bounds)[0::2]  # max over [lo, last); a lone gap[lo] where lo == last
        row_max[k == 1] = 0.0
        return self._end_leap(row_max, gaps, last_step)

    def _end_leap(self, row_max: np.ndarray, gaps: np.ndarray, last_step: np.ndarray) -> int:
        """What applying any leap ends with: each row's largest gap (``row_max`` within the leap, ``gaps``
        before it), its last token time (``leap_ends[last_step]``), and finished rows leaving."""
        st = self.state
        b = st.batch
        n = b.n
        np.fmax(row_max, gaps, out=row_max)  # fmax: a NaN gap (no earlier token) does not count
        max_itl = b.max_itl[:n]
        np.maximum(max_itl, row_max, out=max_itl)
        b.last_t[:n] = self.leap_ends[last_step]
        done = (b.remaining[:n] == 0).nonzero()[0]
        if done.size > 1:  # release in the order stepping one by one would: by finishing step, then row
            done = done[last_step[done].argsort(kind="stable")]
        num_done = self._retire(done, b.last_t[done])
        self.rows_decoding = True
        self.plan, self.leap_steps, self.busy, self.leap_join = None, 0, False, None
        return num_done

    def _retire(self, rows: np.ndarray, when: float | np.ndarray) -> int:
        """Finished rows free their blocks, record their outcome and leave the batch."""
        if rows.size == 0:
            return 0
        st, t = self.state, self.table
        b = st.batch
        rids = b.rid[rows]
        t.t_last_token[rids] = when
        t.max_itl[rids] = b.max_itl[rows]
        if st.role == "prefill":  # the first token is out; the KV now moves to a decode replica
            times = np.broadcast_to(np.asarray(when, dtype=np.float64), rids.shape)
            done = t.output[rids] <= t.out_done[rids] + 1
            t.out_done[rids] = 1
            self.handoffs.extend(zip(rids[~done].tolist(), times[~done].tolist(), strict=True))
            rids, when = rids[done], times[done]
        t.status[rids] = FINISHED
        t.t_finish[rids] = when
        t.out_done[rids] = t.output[rids]
        for rid, held in zip(b.rid[rows].tolist(), b.held[rows].tolist(), strict=True):
            st.pool.release(rid, held)
        if rows.shape[0] == 1:
            b.remove(int(rows[0]))
        else:
            b.drop(rows)
        return int(rows.size)

    def _register_prompt_blocks(self, plan: StepPlan) -> None:
        """Prompt blocks filled by this step become cached under their content keys."""
        st = self.state
        b, bs = st.batch, st.block_size
        n = b.n
        rows = np.nonzero((plan.num_new > 0) & (plan.num_computed_before < b.prompt[:n]))[0]
        for row in rows:
            rid = int(b.rid[row])
            start = int(plan.num_computed_before[row]) // bs
            end = min(int(b.num_computed[row]), int(b.prompt[row])) // bs
            if end > start:
                for key in st.prompt_keys(rid, end, start):
                    st.pool.register(rid, key)


_STEP_INDEX = np.arange(2, 258)  # step numbers 2.. of a leap, sliced instead of rebuilt (spans grow 64, 256, ...)
_STEP_INDEX_M1 = _STEP_INDEX - 1
_MAX_TAKEN_IN = 128  # requests one leap takes in before it is applied (its finished rows then leave)
_STEP_INDEX.flags.writeable = False
_STEP_INDEX_M1.flags.writeable = False


def _window_sums(ctx: np.ndarray, m: np.ndarray, window: int) -> np.ndarray:
    """For each step offset m: sum over sequences of min(ctx + m, window), without an n x m matrix."""
    u = np.sort(ctx)
    prefix = np.concatenate(([0], np.cumsum(u)))
    k = np.searchsorted(u, window - m, side="left")  # sequences still under the window
    sums: np.ndarray = prefix[k] + m * k + window * (u.shape[0] - k)
    return sums
