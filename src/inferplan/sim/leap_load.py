"""What a router sees of a replica inside a leap: requests running and KV blocks held at any instant.

Stepping one by one, a router reading a replica's load at time t sees the state of the step
under way then. A leap holds every row's steps (``DecodeLeap``), so the same numbers follow
from its open segment without ending it: the step under way is a search in the segment's end
times; the rows running in each step were counted when the segment was priced; and a row
running in step g holds ``ceil((c1 - join + g) / bs)`` blocks (at least those it joined with).

The blocks are summed over the running rows, a suffix of the rows sorted by last step. With
``base = c1 - join + bs - 1 = bs*q + r`` and ``g = bs*G + h`` a row holds ``q + G`` blocks, one
more where ``r >= bs - h``: per suffix the sum of q and the sorted residues are built once (when
a router first reads it), and each read is one search.
"""

from __future__ import annotations

import numpy as np

from inferplan.perf.kv_layout import KVLayout

_NONE = np.zeros(0, dtype=np.int64)


class SegmentLoad:
    """Loads during a leap's open segment, read at the step under way at the last ``at(t)``."""

    __slots__ = ("_ends", "_m0", "_first", "_active", "_rows", "_rows_data", "_bs", "_base", "_held", "_suffix",
                 "_layout", "step")

    def __init__(self, ends: np.ndarray, m0: int, first_running: int, active: np.ndarray,
                 rows: tuple[np.ndarray, np.ndarray | None, np.ndarray, np.ndarray | None, bool],
                 block_size: int, layout: KVLayout | None = None) -> None:
        """``ends``: the segment's step end times; ``first_running``: rows in its first step; ``active``: rows
        in each later step; ``rows``: (c1, join, held, order, over) of the leap's rows, ``order`` sorting
        them by last step (None when none finishes inside the leap), ``over`` whether a row joined
        holding more blocks than its first step needs."""
        self._ends, self._m0, self._first, self._active = ends, m0, first_running, active
        self._rows = int(rows[0].shape[0])
        self._rows_data = rows
        self._bs = block_size
        self._layout = layout  # sliding-window pages (perf/kv_layout.py): always read row by row
        self._base: np.ndarray | None = None
        self._held = 0
        self._suffix: tuple[int, int, np.ndarray] = (-1, 0, _NONE)  # (gone, sum of q, sorted r) of the rows running
        self.step = 0  # the segment's step under way at the last ``at``, counted from 0

    def at(self, t: float) -> None:
        """Read the loads of the step under way at ``t`` (a step ending at t is over)."""
        self.step = int(self._ends.searchsorted(t, side="right"))

    @property
    def running(self) -> int:
        """Requests in the batch during that step."""
        k = self.step
        return self._first if k == 0 else int(self._active[k - 1])

    @property
    def blocks_added(self) -> int:
        """KV blocks the batch holds during that step, less those its rows held on joining."""
        base = self._base if self._base is not None else self._sort()
        gone = self._rows - self.running  # rows that finished before it: the first ``gone`` by last step
        g = self._m0 + self.step
        c1, join, held, order, over = self._rows_data
        if over:  # some row holds more than its tokens need, or pages follow a layout: row by row
            have = base[gone:] + g
            blocks = have // self._bs if self._layout is None else self._layout.blocks_of(have - (self._bs - 1))
            need = np.maximum(blocks, held[gone:] if order is None else held[order][gone:])
            return int(np.add.reduce(need)) - self._held
        # base = bs q + r and g = bs G + h: a row holds q + G blocks, and one more where r >= bs - h
        if self._suffix[0] != gone:  # rows finished since the last read: sum the ones still running
            q, r = np.divmod(base[gone:], self._bs)
            r.sort()
            self._suffix = (gone, int(np.add.reduce(q)), r)
        _, q_sum, residues = self._suffix
        big, small = divmod(g, self._bs)
        running = self._rows - gone
        return q_sum + running * big + running - int(residues.searchsorted(self._bs - small)) - self._held

    def _sort(self) -> np.ndarray:
        """``c1 - join + bs - 1`` of the rows in the order of their last steps: ceil((c1 - join + g) / bs)
        is ``(base + g) // bs``."""
        c1, join, held, order, _ = self._rows_data
        base = c1 + (self._bs - 1) - (1 if join is None else join)
        self._base = base = base if order is None else base[order]
        self._held = int(np.add.reduce(held))
        return base
