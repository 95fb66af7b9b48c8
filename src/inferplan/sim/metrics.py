"""Streaming metrics with bounded memory: an inter-token-gap histogram and per-replica time buckets."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def weighted_sum(values: npt.NDArray[np.float64], weights: npt.NDArray[np.float64] | npt.NDArray[np.int64]) -> float:
    """``values @ weights`` without BLAS: OpenBLAS splits a dot of over 10,000 elements across threads, and its
    idle helper then spins for a while, taking a core from the other workers of a process pool (measured:
    the default plan's capacity search ran at half speed on 2 cores)."""
    return float(np.add.reduce(values * weights))


class LogHistogram:
    """Counts of positive values in log-spaced bins (1 us .. 1000 s, ~0.5% wide), plus exact sum and count.

    Values are buffered and binned in bulk: adding a handful of gaps per step then costs
    a slice copy, not a histogram update. Memory stays bounded by the buffer size.
    """

    EDGES = np.logspace(-6, 3, 4001)
    BUFFER = 1 << 16

    def __init__(self) -> None:
        self.counts = np.zeros(self.EDGES.shape[0] + 1, dtype=np.int64)
        self._values = np.zeros(self.BUFFER)
        self._weights = np.zeros(self.BUFFER)
        self._fill = 0
        self._total = 0.0
        self._n = 0
        self._min = float("inf")
        self._max = 0.0

    def _flush(self) -> None:
        k = self._fill
        if k:
            idx = np.searchsorted(self.EDGES, self._values[:k])
            self.counts += np.bincount(idx, weights=self._weights[:k], minlength=self.counts.shape[0]).astype(np.int64)
            self._total += weighted_sum(self._values[:k], self._weights[:k])
            counted = self._values[:k][self._weights[:k] > 0]
            if counted.size:
                self._min, self._max = min(self._min, float(counted.min())), max(self._max, float(counted.max()))
            self._fill = 0

    def add_weighted(self, values: npt.NDArray[np.float64], weight: float | npt.NDArray[np.int64] = 1.0,
                     *, count: int | None = None) -> None:
        """values[i] counted ``weight`` times (a number, or one weight per value): a run of decode steps
        contributes one gap per running request. ``count``: the weights' sum, when the caller has it."""
        k = values.shape[0]
        if k == 0:
            return
        f = self._fill
        if f + k > self._values.shape[0]:
            self._flush()
            f = 0
            if k > self._values.shape[0]:
                self._values, self._weights = np.zeros(k), np.zeros(k)
        self._values[f : f + k] = values
        self._weights[f : f + k] = weight
        self._fill = f + k
        if count is None:
            count = int(weight * k) if isinstance(weight, float) else int(np.add.reduce(weight))
        self._n += count

    def add(self, values: npt.NDArray[np.float64]) -> None:
        self.add_weighted(values, 1.0)

    @property
    def n(self) -> int:
        return self._n

    @property
    def total(self) -> float:
        self._flush()
        return self._total

    @property
    def mean(self) -> float:
        return self.total / self.n if self.n else float("nan")

    def quantile(self, q: float) -> float:
        """The q-quantile, read at the geometric middle of its bin.

        Outside the bins' range (below 1 us, above 1000 s) it is the smallest or largest value seen,
        never the range's edge, which would read as a measurement.
        """
        self._flush()
        if not self._n:
            return float("nan")
        k = int(np.searchsorted(np.cumsum(self.counts), q * self._n, side="left"))
        edges = self.EDGES
        if k >= edges.shape[0]:
            return self._max
        if k == 0:
            return self._min
        lo = edges[max(k - 1, 0)]
        hi = edges[min(k, edges.shape[0] - 1)]
        return float(np.sqrt(lo * hi))


class ReplicaSeries:
    """One replica's activity in fixed time buckets: sums over the steps that started in each.

    The bucket being filled is kept in Python floats and written to the arrays when time
    moves past it, so a step costs a few additions.
    """

    FIELDS = ("busy_s", "steps", "prefill_tokens", "decode_tokens", "running_s", "waiting_s", "kv_blocks_s", "energy_j")

    def __init__(self, bucket_s: float) -> None:
        self.bucket_s = bucket_s
        self._sums = np.zeros((len(self.FIELDS), 64))
        self._kv_max = np.zeros(64)
        self._used = 0  # buckets written so far
        self._k = 0  # the open bucket
        self._open = [0.0] * len(self.FIELDS)
        self._open_kv_max = 0

    def _move_to(self, k: int) -> None:
        if k == self._k:
            return
        self._close()
        self._k = k

    def _close(self) -> None:
        k = self._k
        if k >= self._sums.shape[1]:
            size = max(k + 1, 2 * self._sums.shape[1])
            self._sums = np.pad(self._sums, ((0, 0), (0, size - self._sums.shape[1])))
            self._kv_max = np.pad(self._kv_max, (0, size - self._kv_max.shape[0]))
        self._sums[:, k] += self._open
        self._kv_max[k] = max(self._kv_max[k], self._open_kv_max)
        self._used = max(self._used, k + 1)
        self._open = [0.0] * len(self.FIELDS)
        self._open_kv_max = 0

    def add_step(
        self, t: float, dur: float, prefill: int, decode: int, running: int, waiting: int, kv_blocks: int, joules: float
    ) -> None:
        self._move_to(int(t / self.bucket_s))
        o = self._open
        o[0] += dur
        o[1] += 1
        o[2] += prefill
        o[3] += decode
        o[4] += running * dur
        o[5] += waiting * dur
        o[6] += kv_blocks * dur
        o[7] += joules
        if kv_blocks > self._open_kv_max:
            self._open_kv_max = kv_blocks

    def add_segment(
        self, t: float, dur: float, prefill: int, decode: int, running: int, waiting: int, kv_blocks: int,
        joules: float, starts: npt.NDArray[np.float64], durs: npt.NDArray[np.float64],
        decodes: npt.NDArray[np.int64], run_joules: npt.NDArray[np.float64], *, busy: float, energy: float,
        decoded: int,
    ) -> None:
        """``add_step`` then ``add_decode_run`` (a leap's segment: one step, then decode steps starting at
        ``starts``), in one call when they all fall in the open bucket, as most do."""
        k = int(t / self.bucket_s)
        if k != self._k or int(float(starts[-1]) / self.bucket_s) != k:
            self.add_step(t, dur, prefill, decode, running, waiting, kv_blocks, joules)
            self.add_decode_run(starts, durs, decodes, waiting, kv_blocks, run_joules, first_start=float(starts[0]),
                                last_start=float(starts[-1]), busy=busy, energy=energy, decoded=decoded)
            return
        o = self._open
        o[0] += dur
        o[1] += 1
        o[2] += prefill
        o[3] += decode
        o[4] += running * dur
        o[5] += waiting * dur
        o[6] += kv_blocks * dur
        o[7] += joules
        o[0] += busy
        o[1] += durs.shape[0]
        o[3] += decoded
        o[4] += weighted_sum(durs, decodes)
        o[5] += waiting * busy
        o[6] += kv_blocks * busy
        o[7] += energy
        if kv_blocks > self._open_kv_max:
            self._open_kv_max = kv_blocks

    def add_decode_run(
        self, starts: npt.NDArray[np.float64], durs: npt.NDArray[np.float64], decodes: npt.NDArray[np.int64],
        waiting: int, kv_blocks: int, joules: npt.NDArray[np.float64], *, first_start: float, last_start: float,
        busy: float, energy: float, decoded: int | None = None,
    ) -> None:
        """Many decode steps at once (a leap): ``decodes[m]`` sequences get one token in step m
        (``decoded`` in all, when the caller has summed them)."""
        k0, k1 = int(first_start / self.bucket_s), int(last_start / self.bucket_s)
        if k0 == k1:  # the usual case: the whole run falls in one bucket
            self._move_to(k0)
            o = self._open
            o[0] += busy
            o[1] += durs.shape[0]
            o[3] += float(np.add.reduce(decodes)) if decoded is None else decoded
            o[4] += weighted_sum(durs, decodes)
            o[5] += waiting * busy
            o[6] += kv_blocks * busy
            o[7] += energy
            if kv_blocks > self._open_kv_max:
                self._open_kv_max = kv_blocks
            return
        self._close()  # write the open bucket, then add the run bucket by bucket
        ks = (starts / self.bucket_s).astype(np.int64)
        ks -= k0
        width = k1 - k0 + 1
        fields = (durs, np.ones(durs.shape[0]), None, decodes, decodes * durs, waiting * durs, kv_blocks * durs, joules)
        self._k = k1
        self._close()  # makes room up to k1 (the open bucket is empty)
        for row, values in enumerate(fields):
            if values is not None:
                self._sums[row, k0 : k1 + 1] += np.bincount(ks, weights=values, minlength=width)
        np.maximum(self._kv_max[k0 : k1 + 1], kv_blocks, out=self._kv_max[k0 : k1 + 1])

    def as_arrays(self) -> dict[str, npt.NDArray[np.float64]]:
        self._close()
        u = self._used
        out = {f: self._sums[i, :u].copy() for i, f in enumerate(self.FIELDS)}
        out["t_s"] = np.arange(u, dtype=np.float64) * self.bucket_s
        out["kv_blocks_max"] = self._kv_max[:u].copy()
        return out
