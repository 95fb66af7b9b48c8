"""Where evaluations run: a local process pool by default (all cores), in-process for small jobs."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from typing import TypeVar

from inferplan.errors import InputError

T = TypeVar("T")
R = TypeVar("R")


def run_all(fn: Callable[[T], R], items: Iterable[T], *, executor: str = "local", workers: int | None = None) -> list[R]:
    """``[fn(x) for x in items]``, in parallel processes when there is more than one item and core."""
    jobs = list(items)
    if executor == "ray":
        raise InputError("--executor ray is not available in this version; use --executor local")
    if executor not in ("local", "serial"):
        raise InputError(f"unknown executor '{executor}'; choose local or serial")
    n = workers or os.cpu_count() or 1
    if executor == "serial" or n == 1 or len(jobs) <= 1:
        return [fn(x) for x in jobs]
    with ProcessPoolExecutor(max_workers=min(n, len(jobs))) as pool:
        return list(pool.map(fn, jobs))
