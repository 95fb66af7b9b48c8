"""The vLLM v1 scheduling rules over paged KV blocks; other engines are configurations of it.

One step (DESIGN §3):
1. Start with ``token_budget = max_num_batched_tokens``.
2. Running requests, in admission order, each take
   ``min(num_tokens - num_computed_tokens, long_prefill_token_threshold, token_budget)``.
   If its blocks do not fit, preempt the last running request (or, with priority,
   the least important, latest one): free its blocks, reset ``num_computed_tokens``
   to 0, put it back at the head of the waiting queue. If the victim is the request
   itself, stop scheduling running requests.
3. Only if nothing was preempted: admit waiting requests (FCFS or priority) while
   fewer than ``max_num_seqs`` run and budget remains. Prefix-cache hits skip
   compute (the last prompt token is always recomputed). A prompt over the budget is
   chunked, or — chunked prefill off — ends admission. If its blocks do not fit,
   admission stops (head-of-line blocking); waiting never preempts running.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from inferplan.perf.deployment import EngineLimits
from inferplan.perf.kv_layout import KVLayout
from inferplan.sim.policies.base import StepPlan
from inferplan.sim.policies.offline_budget import StepBudget, cap_offline_prefills, offline_budget
from inferplan.sim.state import RejectReason, ReplicaState, RequestTable


@dataclass(frozen=True, slots=True)
class PagedScheduler:
    """vLLM-style continuous batching. Options turn it into Sarathi, Orca, llama.cpp or static batching."""

    name: str = "vllm"
    reserve_full: bool = False  # reserve KV for prompt + all outputs at admission (no preemption)
    static_batches: bool = False  # admit only when nothing runs; run the batch to completion
    token_budget: int | None = None  # overrides max_num_batched_tokens
    max_num_seqs: int | None = None  # overrides the engine limit (llama.cpp slots)
    enable_chunked_prefill: bool | None = None
    slot_context: int = 0  # llama.cpp: tokens per slot; longer requests are rejected
    # SGLang: admission keeps new_token_ratio x (outputs running requests may still write, each clipped to
    # clip_new_tokens) free, and a new request needs its prompt plus its clipped outputs; 0 turns it off
    new_token_ratio: float = 0.0
    clip_new_tokens: int = 4096
    retract_fewest_outputs: bool = False  # SGLang: retract the fewest-generated request (not the last admitted)
    # SGLang without --enable-mixed-chunk: a step with prompt work to do runs only that; the decodes wait
    prefill_first: bool = False

    def state_for(
        self, table: RequestTable, limits: EngineLimits, num_blocks: int, *, priority: bool = False,
        role: str = "both", layout: KVLayout | None = None,
    ) -> ReplicaState:
        """The replica state this policy runs on: engine limits with this policy's overrides."""
        max_seqs = self.max_num_seqs or limits.max_num_seqs
        slot_context = self.slot_context or limits.slot_context
        if slot_context:
            per_slot = layout.blocks(slot_context) if layout else -(-slot_context // limits.block_size)
            num_blocks = min(num_blocks, max_seqs * per_slot)
        return ReplicaState(
            table,
            num_blocks=num_blocks,
            block_size=limits.block_size,
            max_num_seqs=max_seqs,
            max_num_batched_tokens=self.token_budget or limits.max_num_batched_tokens,
            enable_chunked_prefill=(
                limits.enable_chunked_prefill if self.enable_chunked_prefill is None else self.enable_chunked_prefill
            ),
            long_prefill_token_threshold=limits.long_prefill_token_threshold,
            prefix_caching=limits.enable_prefix_caching,
            priority=priority,
            slot_context=slot_context,
            role=role,
            layout=layout,
        )

    def reject_reasons(self, rep: ReplicaState) -> npt.NDArray[np.int8]:
        """Per request of the table: 0 if it can ever run on this replica, else a RejectReason."""
        t = rep.table
        target = np.ones_like(t.output) if rep.role == "prefill" else t.output  # as ``output_target``
        total = t.input + target
        reasons = np.zeros(total.shape[0], dtype=np.int8)  # the first matching reason below wins
        if not rep.enable_chunked_prefill:
            # vLLM requires max_num_batched_tokens >= max_model_len without chunking; a resume recomputes all
            reasons[total > rep.max_num_batched_tokens] = RejectReason.TOKEN_BUDGET
        reasons[rep.blocks_of(total) > rep.seq_block_limit] = RejectReason.KV_CACHE
        if rep.slot_context:
            reasons[total > rep.slot_context] = RejectReason.SLOT_CONTEXT
        return reasons

    def admits_whole(self, rep: ReplicaState, prompt: int, running: int) -> bool:
        """Whether a fresh request alone in the queue is admitted with its whole prompt in a step
        where ``running`` requests each decode one token (KV blocks aside: the caller checks those).
        Lets a lone replica take arrivals in during a leap; False wherever admission depends on more."""
        if (self.reserve_full or self.static_batches or self.new_token_ratio or rep.prefix_caching
                or rep.long_prefill_token_threshold > 0 or rep.step_budget is not None or self.prefill_first):
            return False
        return running < rep.max_num_seqs and 0 < prompt <= rep.max_num_batched_tokens - running

    def queue_waits_for_a_finish(self, rep: ReplicaState) -> bool:
        """Decode steps take blocks and free none, and use no more slots or budget: a queue they left blocked
        waits for a finish, except behind SGLang's output reserve, which shrinks as the running requests'
        outputs left do."""
        return not self.new_token_ratio

    # ---- the step ------------------------------------------------------------------------
    def schedule(self, rep: ReplicaState, *, rows_decoding: bool = False) -> StepPlan:
        if self.prefill_first and (len(rep.waiting) or not rows_decoding) and (
                plan := self._prefill_step(rep)) is not None:
            return plan
        start_budget = budget = rep.max_num_batched_tokens
        b = rep.batch
        alloc = np.zeros(b.n + rep.max_num_seqs, dtype=np.int64)
        preempted: list[int] = []
        running_decode = True  # vacuously, with nothing running
        step_budget = offline_budget(rep)
        if b.n:
            budget, running_decode = self._schedule_running(rep, alloc, budget, preempted, rows_decoding, step_budget)
        num_running = b.n
        if not preempted and not (self.static_batches and b.n):
            budget = self._admit_waiting(rep, alloc, budget, step_budget)
        n = b.n
        return StepPlan(
            rids=b.rid[:n].copy(),
            num_new=alloc[:n],  # alloc is this step's own array
            num_computed_before=b.num_computed[:n].copy(),
            preempted=tuple(preempted),
            token_budget_left=budget,
            total_tokens=start_budget - budget,
            num_running=num_running,
            running_decode=running_decode and not preempted,
        )

    def _prefill_step(self, rep: ReplicaState) -> StepPlan | None:
        """SGLang's get_next_batch_to_run: "Run prefill first if possible". The rows still computing their
        prompt continue, then waiting requests are admitted, in a step of their own; None when there is no
        prompt work to do (a decode step follows), or when a continuing prompt's blocks do not fit (the
        general path retracts)."""
        b, start = rep.batch, rep.max_num_batched_tokens
        n = b.n
        rem = b.num_tokens[:n] - b.num_computed[:n]
        rem[(b.num_computed[:n] >= b.prompt[:n]) & (rem <= 1)] = 0  # decoding rows wait
        if not len(rep.waiting) and not rem.any():
            return None  # nothing but decodes
        alloc = np.zeros(n + rep.max_num_seqs, dtype=np.int64)
        budget = start
        if n:
            want = _take_blocks(rep, rem, budget)
            if want is None:
                return None
            alloc[:n] = want
            budget -= int(want.sum())
        if budget > 0:
            budget = self._admit_waiting(rep, alloc, budget, offline_budget(rep))
        if budget == start:
            return None
        m = b.n
        return StepPlan(rids=b.rid[:m].copy(), num_new=alloc[:m], num_computed_before=b.num_computed[:m].copy(),
                        preempted=(), token_budget_left=budget, total_tokens=start - budget, num_running=n,
                        running_decode=False)

    def _schedule_running(
        self, rep: ReplicaState, alloc: np.ndarray, budget: int, preempted: list[int], decoding: bool = False,
        step_budget: StepBudget | None = None,
    ) -> tuple[int, bool]:
        """Tokens for the running rows; returns the budget left and whether every row is a plain decode.

        ``decoding``: the caller knows every row sampled a token in the last step and has
        computed all but that token (true after a leap), so the rows need not be checked.
        """
        b, bs = rep.batch, rep.block_size
        n = b.n
        computed, held = b.num_computed[:n], b.held[:n]
        if n <= budget and not rep.spec_tokens and (
                decoding or int(np.maximum.reduce(b.num_tokens[:n] - computed)) == 1):
            # every running request decodes one token; a row needs a block when its held blocks are exactly
            # full: ceil((c + 1) / bs) - held is 1, else <= 0 (sliding-window layers: their pages, if any)
            if rep.layout is None:
                grow = computed // bs >= held
                total_need = int(np.count_nonzero(grow))
            else:
                pages = np.maximum(rep.layout.blocks_of(computed + 1) - held, 0)
                total_need = int(pages.sum())
            if total_need <= rep.pool.num_free:
                rep.pool.take(total_need)
                held += grow if rep.layout is None else pages
                alloc[:n] = 1
                return budget - n, decoding or bool(np.logical_and.reduce(computed >= b.prompt[:n]))
            return self._schedule_running_with_preemption(rep, alloc, budget, preempted), False
        if rep.spec_tokens and self._schedule_drafts(rep, alloc, budget):
            return budget - n * (rep.spec_tokens + 1), False
        rem = with_drafts(rep, b.num_tokens[:n] - computed, computed, b.prompt[:n])
        want = _take_blocks(rep, rem, budget, step_budget)
        if want is not None:  # fast path: everything fits
            alloc[:n] = want
            return budget - int(want.sum()), False
        return self._schedule_running_with_preemption(rep, alloc, budget, preempted), False

    def _schedule_drafts(self, rep: ReplicaState, alloc: np.ndarray, budget: int) -> bool:
        """Speculative decoding, when every running row decodes and the budget holds all their drafts: each
        takes its last token and k drafts (what the general path gives then, in fewer array operations)."""
        b, q = rep.batch, rep.spec_tokens + 1
        n = b.n
        computed, held = b.num_computed[:n], b.held[:n]
        if n * q > budget or int(np.maximum.reduce(b.num_tokens[:n] - computed)) != 1 or not bool(
                np.logical_and.reduce(computed >= b.prompt[:n])):
            return False
        need = np.maximum(rep.blocks_of(computed + q) - held, 0)
        total_need = int(np.add.reduce(need))
        if total_need > rep.pool.num_free:
            return False
        rep.pool.take(total_need)
        held += need
        alloc[:n] = q
        return True

    def _schedule_running_with_preemption(
        self, rep: ReplicaState, alloc: np.ndarray, budget: int, preempted: list[int]
    ) -> int:
        b, pool = rep.batch, rep.pool
        if self.retract_fewest_outputs:
            self._retract_until_fits(rep, budget, preempted)
        i = 0
        while i < b.n and budget > 0:
            rem = int(b.num_tokens[i] - b.num_computed[i])
            if rem == 1 and b.num_computed[i] >= b.prompt[i]:
                rem += rep.spec_tokens
            if rep.long_prefill_token_threshold > 0:
                rem = min(rem, rep.long_prefill_token_threshold)
            want = min(rem, budget)
            need = max(rep.blocks_for(int(b.num_computed[i]) + want) - int(b.held[i]), 0)
            stop = False
            while need > pool.num_free:
                victim = self._victim(rep)
                preempted.append(int(b.rid[victim]))
                self._preempt(rep, victim)
                if victim == i:
                    stop = True
                    break
            if stop:
                break
            pool.take(need)
            b.held[i] += need
            alloc[i] = want
            budget -= want
            i += 1
        return budget

    def _retract_until_fits(self, rep: ReplicaState, budget: int, preempted: list[int]) -> None:
        """SGLang's retract_decode: before the step, retract the running request with the fewest generated
        tokens (the longest prompt on ties) until every running request's tokens of this step fit."""
        b = rep.batch
        while b.n > 1:
            n = b.n
            rem = with_drafts(rep, b.num_tokens[:n] - b.num_computed[:n], b.num_computed[:n], b.prompt[:n])
            want = np.minimum(np.maximum(budget - (np.cumsum(rem) - rem), 0), rem)
            need = np.maximum(rep.blocks_of(b.num_computed[:n] + want) - b.held[:n], 0)
            if int(need.sum()) <= rep.pool.num_free:
                return
            outputs = b.num_tokens[:n] - b.prompt[:n]
            victim = int(np.lexsort((-b.prompt[:n], outputs))[0])
            preempted.append(int(b.rid[victim]))
            self._preempt(rep, victim)

    def _output_reserve(self, rep: ReplicaState) -> float:
        """SGLang: tokens admission keeps free for the outputs the running requests may still write."""
        if not self.new_token_ratio:
            return 0.0
        left = np.minimum(rep.batch.remaining[: rep.batch.n], self.clip_new_tokens)
        return self.new_token_ratio * float(left.sum())

    def _victim(self, rep: ReplicaState) -> int:
        """Last admitted (FCFS), or the least important and latest (priority)."""
        b = rep.batch
        if not rep.priority:
            return b.n - 1
        pri = rep.table.wl.priority[b.rid[: b.n]]
        arr = rep.table.arrival[b.rid[: b.n]]
        order = np.lexsort((arr, pri))  # ascending: most important first
        return int(order[-1])

    def _preempt(self, rep: ReplicaState, row: int) -> None:
        b, t = rep.batch, rep.table
        rid = int(b.rid[row])
        held = int(b.held[row])
        rep.pool.release(rid, held)
        t.out_done[rid] = int(b.num_tokens[row] - b.prompt[row])
        t.t_last_token[rid] = b.last_t[row]
        t.max_itl[rid] = b.max_itl[row]
        if 0 < held <= rep.swap_blocks_free:  # swapped out to host memory: a resume copies it back
            rep.swap_blocks_free -= held
            rep.swapped[rid] = held
            t.kv_ready[rid] = computed = int(b.num_computed[row])
            rep.swap_tokens += computed
        else:  # its KV is gone with the blocks (transferred KV too): a resume recomputes it locally
            t.kv_ready[rid] = 0
        b.remove(row)
        t.num_preemptions[rid] += 1
        rep.num_preemptions += 1
        rep.waiting.push_front(rid)

    def _admit_waiting(self, rep: ReplicaState, alloc: np.ndarray, budget: int,
                       step_budget: StepBudget | None = None) -> int:
        b, t, pool, bs = rep.batch, rep.table, rep.pool, rep.block_size
        reserved = self._output_reserve(rep)  # tokens kept free for running outputs (SGLang; else 0)
        pages_per_block = rep.layout.pages_per_block if rep.layout else 1  # an output token's pages, at most
        if step_budget is not None:  # this step's prefill tokens, decoding rows and keys so far
            n0 = b.n
            decoding = int(np.count_nonzero((alloc[:n0] == 1) & (b.num_computed[:n0] >= b.prompt[:n0])))
            scheduled, ctx = int(alloc[:n0].sum()) - decoding, int(b.num_computed[:n0].sum())
        while len(rep.waiting) and budget > 0 and b.n < rep.max_num_seqs:
            rid = rep.waiting.peek()
            prompt = int(t.input[rid])
            num_tokens = prompt + int(t.out_done[rid])  # a resumed request recomputes its outputs too
            hits = hit_evictable = 0
            keys: list[object] = []
            if rep.prefix_caching:
                keys = rep.prompt_keys(rid, (num_tokens - 1) // bs)  # never hit the last token
                keys = keys[: min(len(keys), prompt // bs)]
                hits, hit_evictable = pool.cached_prefix(keys)
            loads = pool.cpu_prefix(keys[hits:]) if pool.cpu_blocks else 0  # found in the host tier
            # KV that arrived from a prefill replica counts too
            computed = max((hits + loads) * bs, int(t.kv_ready[rid]))
            new = num_tokens - computed
            if rep.long_prefill_token_threshold > 0:
                new = min(new, rep.long_prefill_token_threshold)
            if not rep.enable_chunked_prefill and new > budget:
                break
            new = min(new, budget)
            if step_budget is not None:
                if not t.wl.online[rid]:  # offline work: only what keeps this step and the next within budget
                    fits = step_budget.decode_fits(b.n + 1, ctx + num_tokens)
                    new = step_budget.prefill_room(scheduled, decoding, ctx, new,
                                                   rep.enable_chunked_prefill) if fits else 0
                    if new == 0:
                        break
                scheduled, ctx = scheduled + new, ctx + computed
            target = rep.output_target(rid)
            reserve = prompt + target if self.reserve_full else computed + new
            need = max(rep.blocks_for(reserve) - hits, 0)
            outputs = min(target - int(t.out_done[rid]), self.clip_new_tokens) if self.new_token_ratio else 0
            if (need + hit_evictable) * bs + (outputs + reserved) * pages_per_block > pool.num_free * bs:
                break  # head-of-line blocking: waiting never preempts running
            reserved += outputs
            rep.waiting.pop()
            if hits:
                pool.acquire(rid, keys[:hits])
            swapped = rep.swapped.pop(rid, 0)
            if swapped:  # its KV comes back from host memory (what prefix hits do not already hold)
                rep.swap_blocks_free += swapped
                rep.swap_tokens += max(computed - (hits + loads) * bs, 0)
                t.prefix_hit_tokens[rid] += (hits + loads) * bs
            elif hits or loads:
                t.prefix_hit_tokens[rid] += computed
            pool.take(need)
            if loads:  # copied back from the host into blocks just taken; the replica prices the copy
                pool.load(rid, keys[hits : hits + loads])
                rep.loaded_tokens += loads * bs
            done = int(t.out_done[rid])
            row = b.append(rid, num_tokens, computed, hits + need, prompt, target - done,
                           float(t.t_last_token[rid]), float(t.max_itl[rid]))
            if row >= alloc.shape[0]:
                raise AssertionError("running batch exceeded max_num_seqs")
            alloc[row] = new
            budget -= new
        return budget


def _take_blocks(rep: ReplicaState, rem: npt.NDArray[np.int64], budget: int,
                 step_budget: StepBudget | None = None) -> npt.NDArray[np.int64] | None:
    """The running rows' tokens this step in order while ``budget`` lasts (``rem``: what each wants), their blocks
    taken; None, with nothing taken, where those blocks do not fit."""
    b = rep.batch
    n = b.n
    computed = b.num_computed[:n]
    if rep.long_prefill_token_threshold > 0:
        np.minimum(rem, rep.long_prefill_token_threshold, out=rem)
    want: npt.NDArray[np.int64] = np.minimum(np.maximum(budget - (np.cumsum(rem) - rem), 0), rem)
    if step_budget is not None:
        cap_offline_prefills(step_budget, rep.table.wl.online[b.rid[:n]], want, computed, b.prompt[:n])
    need = rep.blocks_of(computed + want) - b.held[:n]
    need[want == 0] = 0
    np.maximum(need, 0, out=need)
    total_need = int(need.sum())
    if total_need > rep.pool.num_free:
        return None
    rep.pool.take(total_need)
    b.held[:n] += need
    return want


def with_drafts(rep: ReplicaState, rem: npt.NDArray[np.int64], computed: npt.NDArray[np.int64],
                prompt: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Tokens each running row wants: its uncomputed ones, and under speculative decoding a decoding row's
    drafts too (vLLM v1 schedules ``num_tokens_with_spec``: they take budget and KV slots like any token)."""
    if not rep.spec_tokens:
        return rem
    drafting: npt.NDArray[np.int64] = rem + rep.spec_tokens * ((rem == 1) & (computed >= prompt))
    return drafting
