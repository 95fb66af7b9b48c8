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
from inferplan.perf.memory import MemoryPlan, host_tier_blocks, plan_memory
from inferplan.perf.step_cost import StepCost
from inferplan.sim.leap import DecodeLeap, extend_leap, offer_to_leap, run_leap
from inferplan.sim.leap_apply import finish_leap
from inferplan.sim.leap_load import SegmentLoad
from inferplan.sim.metrics import LogHistogram, ReplicaSeries
from inferplan.sim.policies.base import EnginePolicy, StepPlan
from inferplan.sim.policies.offline_budget import StepBudget
from inferplan.sim.shape import analyse_step
from inferplan.sim.speculation import SpeculativeSteps
from inferplan.sim.state import FINISHED, PENDING, RejectReason, RequestTable


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
        cost: StepCost | None = None,
        offline_budget_s: float = 0.0,
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
        priority = priority or dep.limits.priority_scheduling
        self.state = policy.state_for(table, dep.group_limits, mem.num_kv_blocks, priority=priority, role=role,
                                      layout=mem.layout)
        self.state.seq_block_limit = min(self.state.seq_block_limit, mem.blocks_per_cache)
        # speculative decoding: decoding rows are scheduled their drafts too, and steps run one by one
        self.spec = SpeculativeSteps(dep, len(table), index) if dep.speculation else None
        self.state.spec_tokens = dep.speculation.k if dep.speculation else 0
        self._host_tier(dep, mem)
        self.handoffs: list[tuple[int, float]] = []  # prefill role: (request, first-token time) to transfer
        self.cost = cost or StepCost(dep)
        if offline_budget_s > 0:
            self.state.step_budget = StepBudget(offline_budget_s, self.cost.seconds)
        self.window = dep.attention_window
        self.max_waiting = max_waiting
        self.itl = itl
        self.series = ReplicaSeries(bucket_s)
        self.busy = False
        self.plan: StepPlan | None = None
        # every running row sampled in the last step (set after a leap): the next schedule need not check them
        self.rows_decoding = False
        self.leap: DecodeLeap | None = None  # the steps being run as one event (None: a single step)
        self.allow_leap = leap and self.spec is None
        self.solo = solo  # no router reads its load between events (a lone replica, or round-robin)
        # set when no router reads this replica's load (a lone replica, or round-robin; then ``solo``):
        # its arrivals, which it may take in inside a leap
        self.feed: ArrivalFeed | None = None
        self.busy_s = 0.0
        self.energy_j = 0.0
        self.num_steps = 0
        self.max_kv_blocks_used = 0
        self._reasons: np.ndarray | None = None  # why each request of the table cannot run here (0: it can)
        self._seen: SegmentLoad | None = None  # the leap's loads at the last ``observe`` (None: not in a leap)

    # ---- load, for routers -----------------------------------------------------------------
    def observe(self, now: float) -> None:
        """Make ``num_outstanding`` and ``kv_usage`` report the state at ``now``: inside a leap, that of the
        step under way then (the event loop calls this before a router reads them)."""
        leap = self.leap
        if leap is None:
            self._seen = None
            return
        seen = leap.seen
        if seen is None:
            st = self.state
            seen = leap.load(st.batch.held[: st.batch.n], st.block_size, st.layout)
        self._seen = seen
        seen.at(now)

    @property
    def num_outstanding(self) -> int:
        seen = self._seen
        return (self.state.batch.n if seen is None else seen.running) + len(self.state.waiting)

    @property
    def kv_usage(self) -> float:
        pool, seen = self.state.pool, self._seen
        used = pool.num_used if seen is None else pool.num_used + seen.blocks_added
        return used / pool.num_blocks

    def resident_prefix(self, rid: int) -> tuple[int, int]:
        """(leading prompt blocks of ``rid`` this replica's cache holds at the last ``observe``, the prompt's
        full blocks), as KV-cache events report them. Inside a leap whose first step is over, that step's
        prompt blocks are cached already, as stepping one by one would have them."""
        st = self.state
        blocks = (int(self.table.input[rid]) - 1) // st.block_size
        if blocks <= 0 or not st.prefix_caching:
            return 0, max(blocks, 0)
        if self._seen is not None and self._seen.step > 0 and self.plan is not None:
            self.register_prompt_blocks(self.plan)
        return st.pool.cached_prefix(st.prompt_keys(rid, blocks))[0], blocks

    def reject_reason(self, rid: int) -> int:
        if self.max_waiting and len(self.state.waiting) >= self.max_waiting:
            return RejectReason.QUEUE_FULL
        if self._reasons is None:  # once, for every request (after the limits are final)
            self._reasons = self.policy.reject_reasons(self.state)
        return int(self._reasons[rid])

    def enqueue(self, rid: int) -> None:
        self.state.waiting.push(rid)

    def offer(self, rid: int, now: float, next_arrival: float, horizon: float) -> None:
        """A request routed here at ``now`` while a leap runs: the leap takes it in, or ends with the step
        under way and the request is queued. Either way ``leap.end`` is the new end."""
        if not offer_to_leap(self, rid, now, next_arrival, horizon):
            self.enqueue(rid)

    def extend(self, now: float, horizon: float) -> bool:
        """The leap's open segment ended at ``now``: go on with it, to ``horizon`` (True), or not (False:
        ``finish_step`` applies it). Only where no arrivals of its own are fed to the replica."""
        return self.feed is None and extend_leap(self, now, horizon)

    # ---- stepping -------------------------------------------------------------------------------
    def start_step(self, now: float, horizon: float = float("inf")) -> float | None:
        """Schedule and price the next step; returns when it ends, or None when there is nothing to run.

        A pure-decode step whose successors cannot differ until a request finishes or
        something arrives (``horizon``) is run together with them as one event: the
        same tokens at the same times as stepping one by one, for one scheduler call.
        """
        plan = self.policy.schedule(self.state, rows_decoding=self.rows_decoding)
        self.rows_decoding = False
        st = self.state
        loaded, st.loaded_tokens = st.loaded_tokens, 0
        swapped, st.swap_tokens = st.swap_tokens, 0
        if plan.is_empty:
            self.busy, self.plan = False, None
            return None
        shape, leapable = analyse_step(plan, st.batch, self.window, not len(st.waiting))
        if leapable and self.allow_leap and not loaded and not swapped and (
                not len(st.waiting) or self.policy.queue_waits_for_a_finish(st)):
            self.leap = leap = run_leap(self, plan, shape, now, horizon)
            self.busy, self.plan = True, plan
            return leap.end
        dur, joules = self.cost.cost(shape) if self.spec is None else self.spec.cost(self.cost, plan, st.batch, shape)
        if loaded or swapped:  # host-tier blocks copied in, preempted KV swapped out or in, before the forward
            load_s = (loaded + swapped) * self._host_s_per_token
            dur, joules = dur + load_s, joules + load_s * self.cost.idle_w
            self.host_loaded_tokens += loaded
            self.swapped_tokens += swapped
        self.mark_first_scheduled(plan, now)
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

    def mark_first_scheduled(self, plan: StepPlan, now: float) -> None:
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
        if self.leap is not None:
            num_done = finish_leap(self, self.leap, plan)
            self.rows_decoding = True
            self.plan, self.leap, self.busy, self._seen = None, None, False, None
            return num_done
        st, t = self.state, self.table
        b = st.batch
        n = b.n
        a = plan.num_new
        emitted = None
        if self.spec is not None:  # verified drafts: each row keeps its accepted ones
            a, emitted = self.spec.verify(plan, b)
        b.num_computed[:n] += a
        if st.prefix_caching:
            self.register_prompt_blocks(plan)
        s = np.nonzero((a > 0) & (b.num_computed[:n] >= b.num_tokens[:n]))[0]
        gained = 1 if emitted is None else emitted[s]
        b.num_tokens[s] += gained
        b.remaining[s] -= gained
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
        num_done = self.retire(s[b.remaining[s] == 0], now)
        self.plan = None
        self.busy = False
        return num_done

    def retire(self, rows: np.ndarray, when: float | np.ndarray) -> int:
        """Finished rows free their blocks, record their outcome and leave the batch."""
        if rows.size == 0:
            return 0
        st, t = self.state, self.table
        b = st.batch
        rids = b.rid[rows]
        t.t_last_token[rids] = when
        t.max_itl[rids] = b.max_itl[rows]
        if st.role == "prefill":  # the first token is out; the KV now moves to a decode replica
            times = np.full(rids.shape[0], when) if isinstance(when, float) else when
            done = t.output[rids] <= t.out_done[rids] + 1
            t.out_done[rids] = 1
            self.handoffs.extend(zip(rids[~done].tolist(), times[~done].tolist(), strict=True))
            rids, when = rids[done], times[done]
        t.status[rids] = FINISHED
        t.t_finish[rids] = when
        t.out_done[rids] = t.output[rids]
        if st.prefix_caching and t.wl.chain_covers_outputs:
            self.register_output_blocks(rows)
        for rid, held in zip(b.rid[rows].tolist(), b.held[rows].tolist(), strict=True):
            st.pool.release(rid, held)
        if rows.shape[0] == 1:
            b.remove(int(rows[0]))
        else:
            b.drop(rows)
        return int(rows.size)

    def register_prompt_blocks(self, plan: StepPlan) -> None:
        """Prompt blocks filled by this step become cached under their content keys. Counted from the plan, so a
        leap may register its first step's blocks before its rows advance (again when it ends: no change)."""
        st = self.state
        b, bs = st.batch, st.block_size
        n = b.n
        before, new = plan.num_computed_before, plan.num_new
        for row in np.nonzero((new > 0) & (before < b.prompt[:n]))[0]:  # up to where the step's prompt tokens end
            end = min(int(before[row] + new[row]), int(b.prompt[row]))
            self._register_blocks(int(b.rid[row]), int(before[row]) // bs, end // bs)

    def register_output_blocks(self, rows: np.ndarray) -> None:
        """Full blocks of a finished request's outputs become cached where its prefix chain names them (a
        session's next turn resends the response). vLLM caches every full block; outputs no later prompt
        can share are left uncached here, which only spares work."""
        st, wl = self.state, self.table.wl
        assert wl.prefix_chain is not None
        b, bs = st.batch, st.block_size
        per_chain = wl.chain_block_tokens // bs
        for row in rows.tolist():
            rid = int(b.rid[row])
            self._register_blocks(rid, int(b.prompt[row]) // bs,
                                  min(len(wl.prefix_chain[rid]) * per_chain, int(b.num_computed[row]) // bs))

    def _register_blocks(self, rid: int, start: int, end: int) -> None:
        """The request's blocks [start, end) become cached under their content keys."""
        st = self.state
        if end > start:
            for key in st.prompt_keys(rid, end, start):
                st.pool.register(rid, key)

    def _host_tier(self, dep: Deployment, mem: MemoryPlan) -> None:
        """KV in host memory: a CPU tier for evicted prefix blocks (each device keeps its share of
        ``cpu_kv_cache_gib``) and swap space for preempted requests (``swap_space_gib``); every copy costs its
        bytes over the host link (``DeviceSpec.host_link_gb_s``)."""
        self.host_loaded_tokens = self.swapped_tokens = 0
        self._host_s_per_token = 0.0
        lim = dep.limits
        if not (lim.cpu_kv_cache_gib and self.state.prefix_caching) and not lim.swap_space_gib:
            return
        assert dep.device.host_link_gb_s is not None
        if self.state.prefix_caching:  # blocks of all layers, per device, like the device's own
            self.state.pool.cpu_blocks = host_tier_blocks(dep)
        # swap space in the device's own pages (a sliding-window layout's pages are smaller)
        self.state.swap_blocks_free = int(lim.swap_space_gib * 2**30 / dep.num_devices / mem.page_bytes)
        self._host_s_per_token = mem.kv_bytes_per_token / (dep.device.host_link_gb_s * 1e9)
