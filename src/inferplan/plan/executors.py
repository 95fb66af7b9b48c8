"""Where evaluations run: a local process pool by default (all cores), in-process for small jobs, or Ray.

Ray is an optional extra (`pip install 'inferplan[ray]'`), imported only when asked for.
With ``RAY_ADDRESS`` set it joins that cluster; otherwise it starts a local Ray instance.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

from inferplan.errors import InputError

T = TypeVar("T")
R = TypeVar("R")


def run_all(fn: Callable[[T], R], items: Iterable[T], *, executor: str = "local",
            workers: int | None = None, size: Callable[[T], float] | None = None,
            on_result: Callable[[int, R], None] | None = None) -> list[R]:
    """``[fn(x) for x in items]``, in parallel processes when there is more than one item and core.

    ``size``: a job's expected cost. The largest start first, so the last jobs a pool runs are short
    ones and no worker sits idle while another finishes a long one (results keep the items' order).
    ``on_result(i, result)`` runs in this process as each job finishes, in whatever order they finish:
    the caller records results there, so an interrupted sweep keeps every finished job's result even
    when the workers are on other machines."""
    jobs = list(items)
    if executor not in ("local", "serial", "ray"):
        raise InputError(f"unknown executor '{executor}'; choose local, serial or ray")
    n = workers or os.cpu_count() or 1
    order = sorted(range(len(jobs)), key=lambda i: -size(jobs[i])) if size else list(range(len(jobs)))
    finished: Iterator[tuple[int, R]]
    if executor == "serial" or (executor == "local" and (n == 1 or len(jobs) <= 1)):
        finished = ((i, fn(job)) for i, job in enumerate(jobs))
    elif executor == "ray":
        finished = _run_ray(fn, jobs, order)
    else:
        finished = _run_pool(fn, jobs, order, min(n, len(jobs)))
    out: dict[int, R] = {}
    for i, result in finished:
        out[i] = result
        if on_result is not None:
            on_result(i, result)
    return [out[i] for i in range(len(jobs))]


def _call(fn_and_job: tuple[Callable[[T], R], int, T]) -> tuple[int, R]:
    fn, i, job = fn_and_job
    return i, fn(job)


def _run_pool(fn: Callable[[T], R], jobs: list[T], order: list[int], workers: int) -> Iterator[tuple[int, R]]:
    """(index, result) of each job as it finishes, from a process pool whose workers leave Ctrl-C to the
    parent: on an interrupt the parent stops them at once (results already yielded are the caller's) and
    re-raises.

    multiprocessing's Pool, not concurrent.futures': its ``terminate()`` is made for stopping workers
    mid-job, while killing a ProcessPoolExecutor's workers races its manager thread, which can fail
    on a cancelled future (InvalidStateError) and leave the process hanging at exit."""
    with multiprocessing.get_context().Pool(processes=workers, initializer=_ignore_sigint) as pool:
        # leaving the block terminates the pool, interrupted or not
        yield from pool.imap_unordered(_call, [(fn, i, jobs[i]) for i in order], chunksize=1)


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _run_ray(fn: Callable[[T], R], jobs: list[T], order: list[int]) -> Iterator[tuple[int, R]]:
    """(index, result) of each job as it finishes, on Ray: ``RAY_ADDRESS``'s cluster, else a local one."""
    try:
        import ray  # noqa: PLC0415  (optional extra, imported only for --executor ray)
    except ImportError:
        raise InputError("--executor ray needs Ray: pip install 'inferplan[ray]'") from None
    if not ray.is_initialized():
        ray.init(address=os.environ.get("RAY_ADDRESS") or None, include_dashboard=False, log_to_driver=False,
                 configure_logging=False)
    remote = ray.remote(fn)
    pending = {remote.remote(jobs[i]): i for i in order}
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1)
        for ref in ready:
            yield pending.pop(ref), ray.get(ref)
