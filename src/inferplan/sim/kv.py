"""Paged KV-cache blocks with optional prefix caching, as vLLM's block pool keeps them.

Without prefix caching the pool is a counter. With it, full prompt blocks carry
a key naming their content (the chain of tokens before them); a block whose
last user frees it stays cached and is reused least-recently-used first.
Allocation that does not fit returns False — never raises. With a CPU tier, a cached block
evicted from the device moves to host memory (least-recently-used there too, ``cpu_blocks`` of
them); a later prompt that needs it loads it back instead of recomputing it (vLLM's CPU offloading
connector, LMCache, SGLang's HiCache).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, Sequence

Key = Hashable


class BlockPool:
    """Fixed number of blocks of ``block_size`` tokens."""

    def __init__(self, num_blocks: int, block_size: int, *, prefix_caching: bool = False, cpu_blocks: int = 0) -> None:
        self.num_blocks = num_blocks
        self.cpu_blocks = cpu_blocks if prefix_caching else 0
        self._cpu: OrderedDict[Key, None] = OrderedDict()  # blocks evicted to host memory, oldest first
        self.block_size = block_size
        self.prefix_caching = prefix_caching
        self.num_free_uncached = num_blocks
        self._refs: dict[Key, int] = {}  # cached block -> number of requests holding it
        self._evictable: OrderedDict[Key, None] = OrderedDict()  # refcount 0, oldest first
        self._owned: dict[int, list[Key]] = {}  # request -> keyed blocks it holds

    @property
    def num_free(self) -> int:
        """Blocks an allocation may use: never used, or cached but held by nobody."""
        return self.num_free_uncached + len(self._evictable)

    @property
    def num_used(self) -> int:
        return self.num_blocks - self.num_free

    def take(self, n: int) -> bool:
        """Allocate ``n`` fresh blocks, evicting least-recently-used cached ones if needed."""
        if n <= 0:
            return True
        if n > self.num_free:
            return False
        use = min(n, self.num_free_uncached)
        self.num_free_uncached -= use
        for _ in range(n - use):
            key, _ = self._evictable.popitem(last=False)
            del self._refs[key]
            if self.cpu_blocks:  # the host tier keeps what the device evicts
                self._cpu[key] = None
                self._cpu.move_to_end(key)
                if len(self._cpu) > self.cpu_blocks:
                    self._cpu.popitem(last=False)
        return True

    # ---- prefix caching -----------------------------------------------------------
    def cached_prefix(self, keys: Sequence[Key]) -> tuple[int, int]:
        """(leading keys cached, how many of those are evictable, i.e. would leave the free count)."""
        hits = evictable = 0
        for key in keys:
            refs = self._refs.get(key)
            if refs is None:
                break
            hits += 1
            evictable += refs == 0
        return hits, evictable

    def cpu_prefix(self, keys: Sequence[Key]) -> int:
        """How many leading ``keys`` the host tier holds (the ones after the device's own hits)."""
        hits = 0
        for key in keys:
            if key not in self._cpu:
                break
            hits += 1
        return hits

    def load(self, rid: int, keys: Sequence[Key]) -> None:
        """Host-tier blocks copied into blocks the request just took: cached on the device again, under it."""
        for key in keys:
            self._cpu.move_to_end(key)
            self.register(rid, key)

    def acquire(self, rid: int, keys: Sequence[Key]) -> None:
        """Hold cached blocks for a request (the hits found by ``cached_prefix``)."""
        owned = self._owned.setdefault(rid, [])
        for key in keys:
            refs = self._refs[key]
            if refs == 0:
                del self._evictable[key]
            self._refs[key] = refs + 1
            owned.append(key)

    def register(self, rid: int, key: Key) -> None:
        """A block the request just filled becomes cached under ``key`` (unless that content is cached already)."""
        if key in self._refs:
            return
        self._refs[key] = 1
        self._owned.setdefault(rid, []).append(key)

    def release(self, rid: int, held_blocks: int) -> None:
        """Free all of a request's blocks: keyed ones stay cached (evictable), the rest return."""
        keys = self._owned.pop(rid, ())
        for key in keys:
            refs = self._refs[key] - 1
            self._refs[key] = refs
            if refs == 0:
                self._evictable[key] = None
        self.num_free_uncached += held_blocks - len(keys)

    def check(self) -> None:
        """Invariants: counts in range, every evictable block cached with no holder."""
        assert 0 <= self.num_free_uncached <= self.num_blocks
        assert 0 <= self.num_used <= self.num_blocks
        assert all(self._refs[k] == 0 for k in self._evictable)
        assert len(self._refs) + self.num_free_uncached <= self.num_blocks
