"""Streaming metrics with bounded memory: an inter-token-gap histogram and per-replica time buckets."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


class LogHistogram:
    """Counts of positive values in log-spaced bins (1 us .. 1000 s, ~0.5% wide), plus exact sum and count."""

    EDGES = np.logspace(-6, 3, 4001)

    def __init__(self) -> None:
        self.counts = np.zeros(self.EDGES.shape[0] + 1, dtype=np.int64)
        self.total = 0.0
        self.n = 0

    def add(self, values: npt.NDArray[np.float64]) -> None:
        if values.size == 0:
            return
        idx = np.searchsorted(self.EDGES, values)
        if values.size < 64 and (idx == idx[0]).all():  # a decode step: every gap is the same
            self.counts[idx[0]] += values.size
        else:
            np.add.at(self.counts, idx, 1)
        self.total += float(values.sum())
        self.n += int(values.size)

    def add_repeated(self, value: float, times: int) -> None:
        if times <= 0:
            return
        self.counts[int(np.searchsorted(self.EDGES, value))] += times
        self.total += value * times
        self.n += times

    def add_weighted(self, values: npt.NDArray[np.float64], weight: int) -> None:
        """Each value counted ``weight`` times (a run of decode steps, one gap per running request)."""
        if values.size == 0 or weight <= 0:
            return
        np.add.at(self.counts, np.searchsorted(self.EDGES, values), weight)
        self.total += float(values.sum()) * weight
        self.n += int(values.size) * weight

    @property
    def mean(self) -> float:
        return self.total / self.n if self.n else float("nan")

    def quantile(self, q: float) -> float:
        """The q-quantile, read at the geometric middle of its bin."""
        if not self.n:
            return float("nan")
        k = int(np.searchsorted(np.cumsum(self.counts), q * self.n, side="left"))
        edges = self.EDGES
        lo = edges[max(k - 1, 0)]
        hi = edges[min(k, edges.shape[0] - 1)]
        return float(np.sqrt(lo * hi))


class ReplicaSeries:
    """One replica's activity in fixed time buckets: sums over the steps that started in each."""

    FIELDS = ("busy_s", "steps", "prefill_tokens", "decode_tokens", "running_s", "waiting_s", "kv_blocks_s", "energy_j")

    def __init__(self, bucket_s: float) -> None:
        self.bucket_s = bucket_s
        self._sums = np.zeros((len(self.FIELDS), 64))
        self._kv_max = np.zeros(64)
        self._used = 0  # buckets touched so far

    def _ensure(self, k: int) -> None:
        if k >= self._sums.shape[1]:
            size = max(k + 1, 2 * self._sums.shape[1])
            self._sums = np.pad(self._sums, ((0, 0), (0, size - self._sums.shape[1])))
            self._kv_max = np.pad(self._kv_max, (0, size - self._kv_max.shape[0]))
        self._used = max(self._used, k + 1)

    def add_step(
        self, t: float, dur: float, prefill: int, decode: int, running: int, waiting: int, kv_blocks: int, joules: float
    ) -> None:
        k = int(t / self.bucket_s)
        self._ensure(k)
        col = self._sums[:, k]
        col += (dur, 1.0, prefill, decode, running * dur, waiting * dur, kv_blocks * dur, joules)
        if kv_blocks > self._kv_max[k]:
            self._kv_max[k] = kv_blocks

    def add_decode_run(
        self, starts: npt.NDArray[np.float64], durs: npt.NDArray[np.float64], decode: int, waiting: int,
        kv_blocks: int, joules: npt.NDArray[np.float64],
    ) -> None:
        """Many decode steps at once (a leap): same batch, one token per sequence per step."""
        k0, k1 = int(starts[0] / self.bucket_s), int(starts[-1] / self.bucket_s)
        if k0 == k1:  # the usual case: the whole run falls in one bucket
            self._ensure(k0)
            busy, joule = float(durs.sum()), float(joules.sum())
            steps = durs.shape[0]
            self._sums[:, k0] += (busy, steps, 0.0, decode * steps, decode * busy, waiting * busy, kv_blocks * busy,
                                  joule)
            if kv_blocks > self._kv_max[k0]:
                self._kv_max[k0] = kv_blocks
            return
        ks = (starts / self.bucket_s).astype(np.int64)
        self._ensure(int(ks[-1]))
        ones = np.ones_like(durs)
        for row, values in enumerate((durs, ones, 0 * ones, decode * ones, decode * durs, waiting * durs,
                                      kv_blocks * durs, joules)):
            np.add.at(self._sums[row], ks, values)
        np.maximum.at(self._kv_max, ks, kv_blocks)

    def as_arrays(self) -> dict[str, npt.NDArray[np.float64]]:
        u = self._used
        out = {f: self._sums[i, :u].copy() for i, f in enumerate(self.FIELDS)}
        out["t_s"] = np.arange(u, dtype=np.float64) * self.bucket_s
        out["kv_blocks_max"] = self._kv_max[:u].copy()
        return out
