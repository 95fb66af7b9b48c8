"""A workload: requests as columns (struct of arrays), so a million of them stay small.

Every transform returns a new Workload; nothing is changed in place.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import numpy.typing as npt

from inferplan.errors import InputError

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
B = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True, eq=False)
class Workload:
    """Requests sorted by arrival. Prefix groups share their first ``prefix_tokens`` tokens."""

    arrival_s: F64
    input_tokens: I64
    output_tokens: I64
    prefix_group: I64  # -1: no shared prefix
    prefix_tokens: I64
    session_id: I64  # -1: none
    priority: I64  # lower value = more important (vLLM's convention)
    online: B
    name: str = "workload"
    source: str = ""
    skipped_rows: dict[str, int] = field(default_factory=dict)
    prefix_chain: tuple[tuple[int, ...], ...] | None = None  # per request: content ids of its blocks
    chain_block_tokens: int = 512
    # the chain names each request's outputs too (a session's next turn resends them), so the engine caches
    # their full blocks; a trace's chain (Mooncake hash_ids) names the prompt only
    chain_covers_outputs: bool = False
    # workload classes (``--workload chat:rate=10 --workload batch:count=5000,deadline=6h``): per request the
    # index of its class in ``class_names`` (one class: all 0, named after the workload), and the seconds
    # after its arrival it must finish by (inf: none; such a request is judged by its deadline, not the SLOs)
    class_index: I64 = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    class_names: tuple[str, ...] = ()
    deadline_s: F64 = field(default_factory=lambda: np.zeros(0))
    # per class: the output tokens/s it must be served at, at least (``batch:count=5000,throughput=2000``; 0:
    # none); such a class's requests carry the deadline that rate implies (all done by first + tokens / rate)
    class_throughput: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        n = self.arrival_s.shape[0]
        if self.class_index.shape[0] != n:
            object.__setattr__(self, "class_index", np.zeros(n, dtype=np.int64))
        if not self.class_names:
            object.__setattr__(self, "class_names", (self.name,))
        if self.deadline_s.shape[0] != n:
            object.__setattr__(self, "deadline_s", np.full(n, np.inf))
        if len(self.class_throughput) != len(self.class_names):
            object.__setattr__(self, "class_throughput", (0.0,) * len(self.class_names))

    @classmethod
    def build(
        cls,
        arrival_s: npt.ArrayLike,
        input_tokens: npt.ArrayLike,
        output_tokens: npt.ArrayLike,
        *,
        prefix_group: npt.ArrayLike | None = None,
        prefix_tokens: npt.ArrayLike | None = None,
        session_id: npt.ArrayLike | None = None,
        priority: npt.ArrayLike | None = None,
        online: npt.ArrayLike | None = None,
        name: str = "workload",
        source: str = "",
        skipped_rows: dict[str, int] | None = None,
        prefix_chain: tuple[tuple[int, ...], ...] | None = None,
        chain_block_tokens: int = 512,
        chain_covers_outputs: bool = False,
        class_index: npt.ArrayLike | None = None,
        class_names: tuple[str, ...] = (),
        deadline_s: npt.ArrayLike | None = None,
        class_throughput: tuple[float, ...] = (),
    ) -> Workload:
        """Validate, sort by arrival (stable) and shift time so the first request arrives at 0."""
        arr = np.asarray(arrival_s, dtype=np.float64)
        n = arr.shape[0]

        def col(x: npt.ArrayLike | None, fill: int) -> I64:
            return np.full(n, fill, dtype=np.int64) if x is None else np.asarray(x, dtype=np.int64)

        inp, out = col(input_tokens, 0), col(output_tokens, 0)
        if n == 0:
            raise InputError(f"{name}: the workload has no requests")
        if (inp < 1).any() or (out < 1).any():
            raise InputError(f"{name}: every request needs at least 1 input and 1 output token")
        if not np.isfinite(arr).all():
            raise InputError(f"{name}: arrival times must be finite numbers")
        order = np.argsort(arr, kind="stable")
        pg, pt = col(prefix_group, -1), col(prefix_tokens, 0)
        pt = np.minimum(pt, inp)
        on = np.ones(n, dtype=bool) if online is None else np.asarray(online, dtype=bool)
        deadline = np.full(n, np.inf) if deadline_s is None else np.asarray(deadline_s, dtype=np.float64)
        return cls(
            arrival_s=arr[order] - arr[order][0],
            input_tokens=inp[order],
            output_tokens=out[order],
            prefix_group=pg[order],
            prefix_tokens=pt[order],
            session_id=col(session_id, -1)[order],
            priority=col(priority, 0)[order],
            online=on[order],
            name=name,
            source=source,
            skipped_rows=dict(skipped_rows or {}),
            prefix_chain=None if prefix_chain is None else tuple(prefix_chain[i] for i in order),
            chain_block_tokens=chain_block_tokens,
            chain_covers_outputs=chain_covers_outputs,
            class_index=col(class_index, 0)[order],
            class_names=class_names or (name,),
            deadline_s=deadline[order],
            class_throughput=class_throughput,
        )

    def __len__(self) -> int:
        return int(self.arrival_s.shape[0])

    @property
    def duration_s(self) -> float:
        return float(self.arrival_s[-1]) if len(self) else 0.0

    @property
    def shares_prefixes(self) -> bool:
        """Whether any requests share prompt content (a prefix chain or a shared-prefix group)."""
        return self.prefix_chain is not None or bool((self.prefix_group >= 0).any())

    @property
    def all_sessions(self) -> bool:
        """Every request is a turn of a session sharing its earlier turns (the session presets)."""
        return self.shares_prefixes and bool((self.session_id >= 0).all())

    @property
    def mean_rate(self) -> float:
        """Requests per second over the arrival span."""
        return (len(self) - 1) / self.duration_s if self.duration_s > 0 else float("inf")

    def take(self, index: npt.ArrayLike) -> Workload:
        """The subset of requests at ``index`` (in arrival order), keeping absolute times."""
        idx = np.asarray(index)
        return replace(
            self,
            arrival_s=self.arrival_s[idx],
            input_tokens=self.input_tokens[idx],
            output_tokens=self.output_tokens[idx],
            prefix_group=self.prefix_group[idx],
            prefix_tokens=self.prefix_tokens[idx],
            session_id=self.session_id[idx],
            priority=self.priority[idx],
            online=self.online[idx],
            prefix_chain=None if self.prefix_chain is None else tuple(self.prefix_chain[i] for i in idx.tolist()),
            class_index=self.class_index[idx],
            deadline_s=self.deadline_s[idx],
        )

    @property
    def has_deadlines(self) -> bool:
        """Whether some requests are judged by a deadline (an offline class) rather than the latency SLOs."""
        return bool(np.isfinite(self.deadline_s).any())

    @property
    def mixes_priorities(self) -> bool:
        """Whether requests differ in priority (an online class beside an offline one)."""
        return len(self) > 0 and bool((self.priority != self.priority[0]).any())

    def describe(self) -> dict[str, float | int | str]:
        out: dict[str, float | int | str] = {
            "name": self.name,
            "num_requests": len(self),
            "duration_s": round(self.duration_s, 3),
            "mean_rate_per_s": round(self.mean_rate, 4),
            "mean_input_tokens": round(float(self.input_tokens.mean()), 1),
            "mean_output_tokens": round(float(self.output_tokens.mean()), 1),
            "skipped_rows": sum(self.skipped_rows.values()),
        }
        if len(self.class_names) > 1:
            out["classes"] = " + ".join(self.class_names)
        return out
