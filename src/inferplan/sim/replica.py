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
from inferplan.sim.policies.base import StepPlan
from inferplan.sim.policies.paged import PagedScheduler
from inferplan.sim.state import FINISHED, RequestTable


class Replica:
    def __init__(
        self,
        index: int,
        dep: Deployment,
        policy: PagedScheduler,
        table: RequestTable,
        *,
        itl: LogHistogram,
        bucket_s: float,
        max_waiting: int = 0,
        priority: bool = False,
        leap: bool = True,
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
        self.state = policy.state_for(table, dep.limits, mem.num_kv_blocks, priority=priority)
        self.cost = StepCost(dep)
        self.window = dep.model.sliding_window if dep.model.num_sliding_layers else None
        self.max_waiting = max_waiting
        self.itl = itl
        self.series = ReplicaSeries(bucket_s)
        self.busy = False
        self.plan: StepPlan | None = None
        self.leap: list[float] = []  # durations of the decode steps being run as one event
        self.allow_leap = leap
        self.leap_first_end = 0.0
        self.leap_gaps = np.zeros(0)
        self.busy_s = 0.0
        self.energy_j = 0.0
        self.num_steps = 0
        self.max_kv_blocks_used = 0

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
            return 1
        return self.policy.reject_reason(self.state, rid)

    def enqueue(self, rid: int) -> None:
        self.state.waiting.push(rid)

    # ---- stepping -------------------------------------------------------------------------------
    def start_step(self, now: float, horizon: float = float("inf")) -> float | None:
        """Schedule and price the next step; None when there is nothing to run.

        A pure-decode step whose successors cannot differ until a request finishes or
        something arrives (``horizon``) is run together with them as one event: the
        same tokens at the same times as stepping one by one, for one scheduler call.
        """
        plan = self.policy.schedule(self.state)
        if plan.is_empty:
            self.busy, self.plan = False, None
            return None
        if self.allow_leap and self._is_pure_decode(plan):
            return self._start_leap(plan, now, horizon)
        shape = self._shape(plan)
        dur, joules = self.cost.cost(shape)
        t = self.table
        sched = plan.rids[plan.num_new > 0]
        fresh = sched[np.isnan(t.t_first_scheduled[sched])]
        t.t_first_scheduled[fresh] = now
        pool = self.state.pool
        used = pool.num_used
        self.max_kv_blocks_used = max(self.max_kv_blocks_used, used)
        self.series.add_step(now, dur, shape.prefill_tokens, shape.num_decodes, self.state.batch.n,
                             len(self.state.waiting), used, joules)
        self.busy, self.plan = True, plan
        self.busy_s += dur
        self.energy_j += joules
        self.num_steps += 1
        return dur

    def _is_pure_decode(self, plan: StepPlan) -> bool:
        b = self.state.batch
        a = plan.num_new
        return (
            not plan.preempted
            and plan.total_tokens == a.shape[0]
            and int(a.min()) == 1
            and bool((plan.num_computed_before >= b.prompt[: b.n]).all())
        )

    def _start_leap(self, plan: StepPlan, now: float, horizon: float) -> float:
        st = self.state
        b, bs, pool = st.batch, st.block_size, st.pool
        n = b.n
        c = plan.num_computed_before
        max_steps = self._steps_blocks_allow(c, b.held[:n], int(b.remaining[:n].min()))
        m = np.arange(max_steps)
        ctx = (int(np.add.reduce(c)) + n) + m * n
        win = _window_sums(c + 1, m, self.window) if self.window else None
        durs, joules = self.cost.decode_steps(n, ctx, win)
        ends = np.cumsum(np.concatenate(([now], durs)))[1:]  # sequential sums, as event-by-event
        steps = min(int(np.searchsorted(ends, horizon, side="right")) + 1, max_steps)
        if steps < max_steps:
            durs, joules = durs[:steps], joules[:steps]
        if steps > 1:  # step 1's blocks were allocated by the scheduler
            want = -(-(c + steps) // bs)
            new_held = np.maximum(b.held[:n], want)
            assert pool.take(int(np.add.reduce(new_held - b.held[:n])))
            b.held[:n] = new_held
        used = pool.num_used
        if used > self.max_kv_blocks_used:
            self.max_kv_blocks_used = used
        starts = np.concatenate(([now], ends[: steps - 1]))
        self.series.add_decode_run(starts, durs, n, len(st.waiting), used, joules)
        end = float(ends[steps - 1])
        self.leap_first_end = float(ends[0])
        self.leap_gaps = np.diff(ends[:steps])  # later gaps exactly as event-by-event subtraction gives them
        self.energy_j += float(np.add.reduce(joules))
        self.busy, self.plan, self.leap = True, plan, durs.tolist()
        self.busy_s += end - now
        self.num_steps += steps
        return end - now

    def _steps_blocks_allow(self, c: np.ndarray, held: np.ndarray, limit: int) -> int:
        """Most decode steps (<= limit) whose new KV blocks fit in the free pool."""
        bs, free = self.state.block_size, self.state.pool.num_free
        if c.shape[0] * (limit // bs + 1) <= free:  # cannot run out: every sequence needs <= that many
            return limit
        base = int(np.maximum(-(-(c + 1) // bs) - held, 0).sum())  # already allocated for step 1: 0

        def need(m: int) -> int:
            return int(np.maximum(-(-(c + m) // bs) - held, 0).sum()) - base

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

    def _shape(self, plan: StepPlan) -> BatchShape:
        b = self.state.batch
        n = b.n
        a, c = plan.num_new, plan.num_computed_before
        sched = a > 0
        dec = sched & (a == 1) & (c >= b.prompt[:n])
        pre = sched & ~dec
        ap, cp = a[pre], c[pre]
        cd = c[dec] + 1
        pairs = float((ap * cp).sum() + (ap * (ap + 1)).sum() / 2)
        pairs_w = 0.0
        dwin = 0
        w = self.window
        if w:
            below = np.minimum(ap, np.maximum(w - cp, 1) - 1)
            pairs_w = float((below * cp).sum() + (below * (below + 1)).sum() / 2 + ((ap - below) * w).sum())
            dwin = int(np.minimum(cd, w).sum())
        sampled = int((sched & (c + a >= b.num_tokens[:n])).sum())
        return BatchShape(int(ap.sum()), pairs, pairs_w, int(cp.sum()), int(pre.sum()), int(cd.shape[0]),
                          int(cd.sum()), dwin, sampled)

    def finish_step(self, now: float) -> int:
        """Apply the running plan at its end time; returns how many requests finished."""
        plan = self.plan
        assert plan is not None
        if self.leap:
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
        """Apply ``len(self.leap)`` decode steps: every running request got one token per step."""
        b = self.state.batch
        n = b.n
        steps = len(self.leap)
        b.num_computed[:n] += steps
        b.num_tokens[:n] += steps
        b.remaining[:n] -= steps
        gaps = self.leap_first_end - b.last_t[:n]
        self.itl.add(gaps)
        longest = 0.0
        if steps > 1:
            self.itl.add_weighted(self.leap_gaps, n)
            longest = float(self.leap_gaps.max())
        np.maximum(b.max_itl[:n], np.maximum(gaps, longest), out=b.max_itl[:n])
        b.last_t[:n] = now
        done = np.nonzero(b.remaining[:n] == 0)[0]
        num_done = self._retire(done, now)
        self.plan, self.leap, self.busy = None, [], False
        return num_done

    def _retire(self, rows: np.ndarray, now: float) -> int:
        """Finished rows free their blocks, record their outcome and leave the batch."""
        if rows.size == 0:
            return 0
        st, t = self.state, self.table
        b = st.batch
        rids = b.rid[rows]
        t.status[rids] = FINISHED
        t.t_finish[rids] = now
        t.t_last_token[rids] = now
        t.out_done[rids] = t.output[rids]
        t.max_itl[rids] = b.max_itl[rows]
        for row, rid in zip(rows.tolist(), rids.tolist(), strict=True):
            st.pool.release(rid, int(b.held[row]))
        keep = np.ones(b.n, dtype=bool)
        keep[rows] = False
        b.keep(keep)
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


def _window_sums(ctx: np.ndarray, m: np.ndarray, window: int) -> np.ndarray:
    """For each step offset m: sum over sequences of min(ctx + m, window), without an n x m matrix."""
    u = np.sort(ctx)
    prefix = np.concatenate(([0], np.cumsum(u)))
    k = np.searchsorted(u, window - m, side="left")  # sequences still under the window
    sums: np.ndarray = prefix[k] + m * k + window * (u.shape[0] - k)
    return sums
