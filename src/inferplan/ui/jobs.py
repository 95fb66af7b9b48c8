"""Background jobs: each simulate or plan runs in its own worker process, so the server never blocks.

A supervisor thread per job starts its worker when a slot is free, reads the worker's progress from a queue,
and ends the job in exactly one of done (the run is in the registry), failed (with the worker's message) or
cancelled (the worker was stopped before it recorded anything). Jobs live in the server, so a page reload
finds them; they end with it (``shutdown`` stops the running ones), and each job's record is kept in a
history folder, so a later server still lists it (one that had not ended is listed as cancelled).
"""

from __future__ import annotations

import json
import multiprocessing as mp
import queue
import threading
import time
import uuid
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import TYPE_CHECKING, Any

from inferplan.api import InputError, write_text_atomic

if TYPE_CHECKING:  # loaded on first use, not with the server: the planner imports scipy
    from inferplan.api import PlanRequest, SimulationConfig

TERMINAL = ("done", "failed", "cancelled")
_POLL_S = 0.1


@dataclass
class Job:
    """One background run, as the pages see it (``snapshot``)."""

    id: str
    kind: str  # sim | plan
    title: str
    config: SimulationConfig | PlanRequest | None = field(repr=False)  # None: a job of an earlier server
    beside: str | None = None  # what-if: the run this one is shown beside when it finishes
    state: str = "queued"
    fraction: float | None = None
    message: str = "waiting for a free worker"
    run_id: str | None = None
    error: str | None = None
    started: float = field(default_factory=time.time)
    ended: float | None = None
    cancel_asked: bool = False
    process: BaseProcess | None = field(default=None, repr=False)

    def snapshot(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "title": self.title, "state": self.state,
                "fraction": self.fraction, "message": self.message, "run_id": self.run_id, "error": self.error,
                "beside": self.beside, "elapsed_s": round((self.ended or time.time()) - self.started, 1)}


class JobManager:
    """Starts, watches and cancels jobs; at most ``max_running`` workers at a time, the rest wait."""

    def __init__(self, registry: Path, out_dir: Path, max_running: int = 2, history: Path | None = None) -> None:
        self.registry, self.out_dir, self.history = registry, out_dir, history
        self._slots = threading.BoundedSemaphore(max_running)
        self._lock = threading.Lock()
        self._jobs: dict[str, Job] = {j.id: j for j in _load_history(history)} if history else {}
        self._ctx = mp.get_context("spawn")  # a fresh interpreter: no server threads or sockets inherited

    def submit(self, kind: str, config: SimulationConfig | PlanRequest, title: str, beside: str | None = None) -> Job:
        job = Job(id=uuid.uuid4().hex[:10], kind=kind, title=title, config=config, beside=beside)
        with self._lock:
            self._jobs[job.id] = job
        self._keep(job)
        threading.Thread(target=self._supervise, args=(job,), name=f"job-{job.id}", daemon=True).start()
        return job

    def get(self, job_id: str) -> Job:
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            raise InputError(f"no job '{job_id}' on this workbench (jobs last as long as the server)")
        return job

    def list(self) -> list[Job]:
        with self._lock:
            return sorted(self._jobs.values(), key=lambda j: j.started, reverse=True)

    def cancel(self, job_id: str) -> Job:
        job = self.get(job_id)
        with self._lock:
            if job.state not in TERMINAL:
                job.cancel_asked = True
                job.message = "cancelling"
        return job

    def shutdown(self) -> None:
        for job in self.list():
            self.cancel(job.id)
        deadline = time.time() + 10
        while any(j.state not in TERMINAL for j in self.list()) and time.time() < deadline:
            time.sleep(_POLL_S)

    # ---- the supervisor thread of one job ------------------------------------------------------------
    def _supervise(self, job: Job) -> None:
        """Wait for a free slot (or a cancel), then run the job in it."""
        acquired = False
        while not job.cancel_asked and not (acquired := self._slots.acquire(timeout=_POLL_S)):
            pass
        try:
            if job.cancel_asked:
                self._end(job, "cancelled", "cancelled before it started; nothing was recorded")
            else:
                self._run(job)
        finally:
            if acquired:
                self._slots.release()

    def _run(self, job: Job) -> None:
        assert job.config is not None, "a job of this server"
        q = self._ctx.Queue()
        proc = self._ctx.Process(target=work, args=(job.kind, job.config, str(self.registry), str(self.out_dir), q),
                                 name=f"inferplan-job-{job.id}")
        proc.start()
        with self._lock:
            job.process, job.state, job.message = proc, "running", "starting a worker"
        self._keep(job)
        while True:
            try:
                event = q.get(timeout=_POLL_S)
            except queue.Empty:
                event = None
            if event is not None and self._handle(job, event):
                break
            if job.cancel_asked:
                proc.terminate()
                proc.join(10)
                if not any(e[0] == "done" and self._handle(job, e) for e in _drain(q)):  # finished first: kept
                    self._end(job, "cancelled", "cancelled; the worker was stopped and nothing was recorded")
                break
            if event is None and not proc.is_alive() and q.empty():
                self._end(job, "failed", f"the worker exited (code {proc.exitcode}) before it finished",
                          error=f"worker exit code {proc.exitcode}")
                break
        proc.join(10)
        q.close()

    def _handle(self, job: Job, event: tuple[Any, ...]) -> bool:
        """Apply one worker event; True when it ends the job."""
        kind = event[0]
        if kind == "progress":
            with self._lock:
                job.fraction, job.message = event[1], event[2]
            return False
        if kind == "done":
            self._end(job, "done", f"finished: run {event[1]} recorded", run_id=event[1])
        else:
            self._end(job, "failed", "failed", error=event[1])
        return True

    def _end(self, job: Job, state: str, message: str, *, run_id: str | None = None, error: str | None = None) -> None:
        with self._lock:
            job.state, job.message, job.run_id, job.error, job.ended = state, message, run_id, error, time.time()
            job.fraction = 1.0 if state == "done" else job.fraction
        self._keep(job)

    def _keep(self, job: Job) -> None:
        """The job's record in the history folder, so the Jobs page still lists it after a restart."""
        if self.history is not None:
            self.history.mkdir(parents=True, exist_ok=True)
            record = job.snapshot() | {"started": job.started, "ended": job.ended}
            write_text_atomic(self.history / f"{job.id}.json", json.dumps(record) + "\n")


def _load_history(folder: Path) -> list[Job]:
    """Jobs of earlier servers; one that had not ended when its server stopped ended then, recording nothing."""
    jobs = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            d = json.loads(path.read_text())
            job = Job(id=str(d["id"]), kind=str(d["kind"]), title=str(d["title"]), config=None, beside=d.get("beside"),
                      state=str(d["state"]), fraction=d.get("fraction"), message=str(d["message"]),
                      run_id=d.get("run_id"), error=d.get("error"), started=float(d["started"]), ended=d.get("ended"))
        except (ValueError, KeyError, TypeError):
            continue  # a record that cannot be read: the run registry, not this list, is the record of runs
        if job.state not in TERMINAL:
            job.state, job.message = "cancelled", "the workbench stopped before it finished; nothing was recorded"
        jobs.append(job)
    return jobs


def _drain(q: Any) -> list[tuple[Any, ...]]:
    out = []
    while True:
        try:
            out.append(q.get_nowait())
        except (queue.Empty, OSError, EOFError, ValueError):
            return out


def work(kind: str, config: SimulationConfig | PlanRequest, registry: str, out_dir: str, q: Any) -> None:
    """The worker process: run, record, and report progress and the outcome on ``q``."""
    from inferplan import api  # noqa: PLC0415  (in the worker, after spawn)

    said = [0.0, -1.0]  # when, and at what fraction, progress was last sent

    def tell(fraction: float | None, text: str) -> None:
        now = time.monotonic()
        if now - said[0] >= 0.2 or fraction is None or fraction - said[1] >= 0.05:  # noqa: PLR2004
            said[:] = [now, fraction if fraction is not None else said[1]]
            q.put(("progress", fraction, text))

    try:
        reg = api.Registry(Path(registry))
        if isinstance(config, api.SimulationConfig):
            run: Any = api.run_simulation(
                config, out_dir=Path(out_dir), registry=reg,
                progress=lambda d, t: tell(d / max(t, 1), f"simulated {d:,} of {t:,} arrivals"))
        else:
            run = api.run_plan(config, out_dir=Path(out_dir), registry=reg, progress=lambda m: tell(None, m))
        q.put(("done", run.run_id))
    except api.InputError as exc:
        q.put(("failed", str(exc)))
    except Exception as exc:  # noqa: BLE001  (a bug: the page says what, the server stays up)
        q.put(("failed", f"{type(exc).__name__}: {exc} (a bug in inferplan; please report it)"))
