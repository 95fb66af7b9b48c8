"""Where evaluations run: a local process pool by default (all cores), in-process for small jobs, or Ray.

Ray is an optional extra (`pip install 'inferplan[ray]'`), imported only when asked for.
With ``RAY_ADDRESS`` set it joins that cluster; otherwise it starts a local Ray instance.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections.abc import Callable, Iterable
from typing import TypeVar

from inferplan.errors import InputError

T = TypeVar("T")
R = TypeVar("R")


def run_all(fn: Callable[[T], R], items: Iterable[T], *, executor: str = "local",
            workers: int | None = None, size: Callable[[T], float] | None = None) -> list[R]:
    """``[fn(x) for x in items]``, in parallel processes when there is more than one item and core.

    ``size``: a job's expected cost. The largest start first, so the last jobs a pool runs are short
    ones and no worker sits idle while another finishes a long one (results keep the items' order)."""
    jobs = list(items)
    if executor not in ("local", "serial", "ray"):
        raise InputError(f"unknown executor '{executor}'; choose local, serial or ray")
    n = workers or os.cpu_count() or 1
    if executor == "serial" or (executor == "local" and (n == 1 or len(jobs) <= 1)):
        return [fn(x) for x in jobs]
    order = sorted(range(len(jobs)), key=lambda i: -size(jobs[i])) if size else list(range(len(jobs)))
    ordered = [jobs[i] for i in order]
    done = _run_ray(fn, ordered) if executor == "ray" else _run_pool(fn, ordered, min(n, len(jobs)))
    out: list[R] = [done[0]] * len(jobs) if jobs else []
    for i, result in zip(order, done, strict=True):
        out[i] = result
    return out


def _run_pool(fn: Callable[[T], R], jobs: list[T], workers: int) -> list[R]:
    """A process pool whose workers leave Ctrl-C to the parent: on an interrupt the parent stops them at
    once (jobs that finished have already written their cache entries) and re-raises.

    multiprocessing's Pool, not concurrent.futures': its ``terminate()`` is made for stopping workers
    mid-job, while killing a ProcessPoolExecutor's workers races its manager thread, which can fail
    on a cancelled future (InvalidStateError) and leave the process hanging at exit."""
    with multiprocessing.get_context().Pool(processes=workers, initializer=_ignore_sigint) as pool:
        return pool.map(fn, jobs, chunksize=1)  # leaving the block terminates the pool, interrupted or not


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _run_ray(fn: Callable[[T], R], jobs: list[T]) -> list[R]:
    try:
        import ray  # noqa: PLC0415  (optional extra, imported only for --executor ray)
    except ImportError:
        raise InputError("--executor ray needs Ray: pip install 'inferplan[ray]'") from None
    if not ray.is_initialized():
        ray.init(address=os.environ.get("RAY_ADDRESS") or None, include_dashboard=False, log_to_driver=False,
                 configure_logging=False)
    remote = ray.remote(fn)
    return list(ray.get([remote.remote(job) for job in jobs]))
