"""Simulation state as arrays: one row per request (RequestTable) and per running request (RunningBatch).

Steps update many running requests at once with numpy; per-request Python work
happens only at admission, preemption and completion.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Hashable
from enum import IntEnum
from typing import TYPE_CHECKING, Protocol

import numpy as np
import numpy.typing as npt

from inferplan.perf.kv_layout import KVLayout
from inferplan.sim.kv import BlockPool
from inferplan.workload.request import Workload

if TYPE_CHECKING:
    from inferplan.sim.policies.offline_budget import StepBudget

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]

# request status codes, and their names in request records
PENDING, WAITING, RUNNING, FINISHED, REJECTED = 0, 1, 2, 3, 4
STATUS_NAMES = ("pending", "waiting", "running", "finished", "rejected")
# the columns of requests.csv, written for simulations (report/records.py) and bench runs
# (measure/bench_records.py, which adds its own after these)
REQUEST_COLUMNS = ("request_id", "arrival_s", "input_tokens", "output_tokens", "replica", "status", "reject_reason",
                   "queue_s", "ttft_s", "tpot_s", "e2e_s", "max_itl_s", "preemptions", "prefix_hit_tokens")


class RejectReason(IntEnum):
    """Why a request was rejected, stored by value in ``RequestTable.reject_reason`` (0: it was not)."""

    NONE = 0
    QUEUE_FULL = 1
    KV_CACHE = 2
    SLOT_CONTEXT = 3
    TOKEN_BUDGET = 4


    @property
    def text(self) -> str:
        """What the reason says in summaries and request records."""
        return _REJECT_TEXT[self]


_REJECT_TEXT = {
    RejectReason.NONE: "",
    RejectReason.QUEUE_FULL: "queue full",
    RejectReason.KV_CACHE: "longer than the replica's KV cache",
    RejectReason.SLOT_CONTEXT: "longer than the per-slot context",
    RejectReason.TOKEN_BUDGET: "longer than the token budget with chunked prefill off",
}
REJECT_REASONS = tuple(r.text for r in RejectReason)  # indexed by the stored value


class RequestTable:
    """What happened to every request of a workload; the simulator's record of truth."""

    def __init__(self, wl: Workload) -> None:
        n = len(wl)
        self.wl = wl
        self.input = wl.input_tokens
        self.output = wl.output_tokens
        self.arrival = wl.arrival_s
        self.status = np.zeros(n, dtype=np.int8)
        self.reject_reason = np.zeros(n, dtype=np.int8)
        self.replica = np.full(n, -1, dtype=np.int32)
        # per replica: the engine's time outside its loop (HTTP, tokenizing, streaming), added to TTFT and E2E
        self.replica_frontend_s = np.zeros(0)
        self.out_done = np.zeros(n, dtype=np.int64)
        self.t_first_scheduled = np.full(n, np.nan)
        self.t_first_token = np.full(n, np.nan)
        self.t_finish = np.full(n, np.nan)
        self.t_last_token = np.full(n, np.nan)
        self.num_preemptions = np.zeros(n, dtype=np.int32)
        self.prefix_hit_tokens = np.zeros(n, dtype=np.int64)
        self.max_itl = np.zeros(n)
        self.kv_ready = np.zeros(n, dtype=np.int64)  # prompt tokens whose KV arrived from a prefill replica

    def __len__(self) -> int:
        return int(self.status.shape[0])


class RunningBatch:
    """Running requests in admission order, as columns of two 2-D arrays (ints, floats) of fixed capacity.

    Per-request facts that change every step (tokens, outputs left, last token time)
    live here while a request runs and go back to the RequestTable when it stops.
    Keeping the columns in two arrays lets one numpy call reorder all of them.
    """

    INT_COLUMNS = ("rid", "num_tokens", "num_computed", "held", "prompt", "remaining")
    FLOAT_COLUMNS = ("last_t", "max_itl")
    __slots__ = ("ints", "floats", *INT_COLUMNS, *FLOAT_COLUMNS, "n")

    def __init__(self, capacity: int) -> None:
        self.n = 0
        self._allocate(np.zeros((len(self.INT_COLUMNS), capacity), dtype=np.int64),
                       np.zeros((len(self.FLOAT_COLUMNS), capacity)))

    def _allocate(self, ints: npt.NDArray[np.int64], floats: F64) -> None:
        self.ints, self.floats = ints, floats
        self.rid: I64 = ints[0]
        self.num_tokens: I64 = ints[1]  # prompt + outputs so far
        self.num_computed: I64 = ints[2]  # tokens whose KV is computed
        self.held: I64 = ints[3]  # KV blocks held
        self.prompt: I64 = ints[4]
        self.remaining: I64 = ints[5]  # outputs still to sample
        self.last_t: F64 = floats[0]  # time of the last sampled token (NaN: none yet)
        self.max_itl: F64 = floats[1]

    def append(self, rid: int, num_tokens: int, num_computed: int, held: int, prompt: int, remaining: int,
               last_t: float, max_itl: float) -> int:
        i = self.n
        if i == self.ints.shape[1]:
            self._allocate(np.concatenate([self.ints, np.zeros_like(self.ints)], axis=1),
                           np.concatenate([self.floats, np.zeros_like(self.floats)], axis=1))
        self.ints[:, i] = (rid, num_tokens, num_computed, held, prompt, remaining)
        self.floats[:, i] = (last_t, max_itl)
        self.n = i + 1
        return i

    def remove(self, index: int) -> None:
        """Drop one row, keeping the order of the others."""
        n = self.n
        if index != n - 1:
            self.ints[:, index : n - 1] = self.ints[:, index + 1 : n]
            self.floats[:, index : n - 1] = self.floats[:, index + 1 : n]
        self.n = n - 1

    def drop(self, rows: I64) -> None:
        """Drop several rows, keeping the order of the others."""
        n = self.n
        gone = np.zeros(n, dtype=bool)
        gone[rows] = True
        kept = (~gone).nonzero()[0]
        k = kept.shape[0]
        self.ints[:, :k] = self.ints[:, :n].take(kept, axis=1)  # take: cheaper than a boolean mask here
        self.floats[:, :k] = self.floats[:, :n].take(kept, axis=1)
        self.n = k


class WaitingQueue(Protocol):
    def push(self, rid: int) -> None: ...
    def push_front(self, rid: int) -> None: ...
    def peek(self) -> int: ...
    def pop(self) -> int: ...
    def __len__(self) -> int: ...


class FcfsQueue:
    """Waiting requests in arrival order; preempted ones go back to the head."""

    def __init__(self) -> None:
        self._q: deque[int] = deque()

    def push(self, rid: int) -> None:
        self._q.append(rid)

    def push_front(self, rid: int) -> None:
        self._q.appendleft(rid)

    def peek(self) -> int:
        return self._q[0]

    def pop(self) -> int:
        return self._q.popleft()

    def __len__(self) -> int:
        return len(self._q)


class PriorityQueue:
    """Waiting requests by (priority, arrival); lower values first, as vLLM's priority policy."""

    def __init__(self, priority: npt.NDArray[np.int64], arrival: npt.NDArray[np.float64]) -> None:
        self._heap: list[tuple[int, float, int]] = []
        self._priority, self._arrival = priority, arrival

    def push(self, rid: int) -> None:
        heapq.heappush(self._heap, (int(self._priority[rid]), float(self._arrival[rid]), rid))

    push_front = push  # a preempted request re-enters by its priority

    def peek(self) -> int:
        return self._heap[0][2]

    def pop(self) -> int:
        return heapq.heappop(self._heap)[2]

    def __len__(self) -> int:
        return len(self._heap)


class ReplicaState:
    """Everything a scheduling policy reads and changes: queues, KV blocks, limits."""

    def __init__(
        self,
        table: RequestTable,
        *,
        num_blocks: int,
        block_size: int,
        max_num_seqs: int,
        max_num_batched_tokens: int,
        enable_chunked_prefill: bool = True,
        long_prefill_token_threshold: int = 0,
        prefix_caching: bool = False,
        priority: bool = False,
        slot_context: int = 0,
        role: str = "both",
        layout: KVLayout | None = None,
    ) -> None:
        self.table = table
        # sliding-window layers page their KV apart (perf/kv_layout.py); None: one page per block of all layers
        self.layout = layout if layout is not None and layout.windowed else None
        self.role = role  # "both" (aggregated), "prefill" (stops after the first token) or "decode"
        self.pool = BlockPool(num_blocks, block_size, prefix_caching=prefix_caching)
        self.seq_block_limit = num_blocks  # most blocks one sequence may hold (one DP rank's cache)
        self.block_size = block_size
        self.max_num_seqs = max_num_seqs
        self.max_num_batched_tokens = max_num_batched_tokens
        self.enable_chunked_prefill = enable_chunked_prefill
        self.long_prefill_token_threshold = long_prefill_token_threshold
        self.prefix_caching = prefix_caching
        self.priority = priority
        self.slot_context = slot_context
        self.batch = RunningBatch(max_num_seqs)
        self.waiting: WaitingQueue = (
            PriorityQueue(table.wl.priority, table.arrival) if priority else FcfsQueue()
        )
        self.num_preemptions = 0
        self.step_budget: StepBudget | None = None  # HyGen's step-time budget for offline work (None: off)
        self.spec_tokens = 0  # speculative decoding: drafted tokens a decoding row verifies each step
        self.loaded_tokens = 0  # prefix tokens admissions copied back from the host tier this step
        # preemption by swap: host blocks free for preempted requests' KV, what each swapped request holds there,
        # and the tokens copied out or back this step (0 blocks: preemption recomputes)
        self.swap_blocks_free = 0
        self.swapped: dict[int, int] = {}
        self.swap_tokens = 0

    def output_target(self, rid: int) -> int:
        """Outputs this replica produces for the request: just the first token on a prefill replica."""
        return 1 if self.role == "prefill" else int(self.table.output[rid])

    def blocks_for(self, tokens: int) -> int:
        """Pages a sequence of ``tokens`` holds."""
        if self.layout is not None:
            return self.layout.blocks(tokens)
        return -(-tokens // self.block_size)

    def blocks_of(self, tokens: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """``blocks_for`` of each entry."""
        if self.layout is not None:
            return self.layout.blocks_of(tokens)
        out: npt.NDArray[np.int64] = -(-tokens // self.block_size)
        return out

    def prompt_keys(self, rid: int, num_blocks: int, start: int = 0) -> list[Hashable]:
        """Content keys of a request's prompt blocks [start, num_blocks): shared prefix, chain, or its own."""
        wl, bs = self.table.wl, self.block_size
        group, shared = int(wl.prefix_group[rid]), int(wl.prefix_tokens[rid]) // bs
        chain = wl.prefix_chain[rid] if wl.prefix_chain is not None else ()
        per_chain = wl.chain_block_tokens // bs
        keys: list[Hashable] = []
        for i in range(start, num_blocks):
            j = i // per_chain if per_chain else len(chain)
            if j < len(chain):
                keys.append((1, chain[j], i))
            elif group >= 0 and i < shared:
                keys.append((0, group, i))
            else:
                keys.append((2, rid, i))
        return keys
