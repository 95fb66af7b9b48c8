"""The run registry: a SQLite file listing every run with its inputs, summary and artifacts.

Default location: the user's data folder (``platformdirs``), overridable with
``--registry PATH`` or the ``INFERPLAN_REGISTRY`` environment variable.
A small key-value table caches expensive evaluations by configuration hash so
long sweeps can resume.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import platformdirs

from inferplan.errors import InputError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    created_utc TEXT NOT NULL,
    label TEXT NOT NULL,
    inputs TEXT NOT NULL,
    summary TEXT NOT NULL,
    out_dir TEXT,
    report TEXT
);
CREATE TABLE IF NOT EXISTS cache (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    created_utc TEXT NOT NULL
);
"""


def default_registry_path() -> Path:
    env = os.environ.get("INFERPLAN_REGISTRY")
    if env:
        return Path(env)
    return Path(platformdirs.user_data_dir("inferplan")) / "runs.sqlite"


@dataclass(frozen=True, slots=True)
class RunRecord:
    id: str
    kind: str
    created_utc: str
    label: str
    inputs: dict[str, Any]
    summary: dict[str, Any]
    out_dir: str | None
    report: str | None


@dataclass(frozen=True, slots=True)
class RunQuery:
    """A search of the registry: each field given narrows it (text matches the id or the label)."""

    text: str = ""
    kind: str | None = None
    model: str | None = None
    device: str | None = None  # a simulation's device, or one of the devices a plan considered
    since: str | None = None  # ISO dates or times, UTC, inclusive
    until: str | None = None
    limit: int = 50
    offset: int = 0

    def where(self) -> tuple[str, list[Any]]:
        clauses, args = [], list[Any]()
        if self.text:
            clauses.append("(id LIKE ? OR label LIKE ?)")
            args += [f"%{self.text}%"] * 2
        if self.kind:
            clauses.append("kind = ?")
            args.append(self.kind)
        if self.model:
            clauses.append("json_extract(inputs, '$.model') = ?")
            args.append(self.model)
        if self.device:
            clauses.append("(json_extract(inputs, '$.device') = ? OR EXISTS (SELECT 1 FROM json_each(inputs, "
                           "'$.devices') WHERE value = ?))")
            args += [self.device] * 2
        if self.since:
            clauses.append("created_utc >= ?")
            args.append(self.since)
        if self.until:
            clauses.append("created_utc < ?")
            args.append(_day_after(self.until) if len(self.until) == len("2026-12-01") else self.until)
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", args


def _day_after(day: str) -> str:
    """``until`` a date includes that whole day."""
    try:
        return (datetime.fromisoformat(day) + timedelta(days=1)).date().isoformat()
    except ValueError:
        raise InputError(f"until: expected a date such as 2026-12-01, got '{day}'") from None


def config_hash(obj: Any) -> str:
    """A stable hash of a JSON-able configuration (key order does not matter)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


RunList = list[RunRecord]  # (inside Registry, ``list`` is its method)
Names = list[str]


class Registry:
    """Open with ``Registry(path)``; every call uses a short transaction."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or default_registry_path()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._connect() as db:
                db.executescript(_SCHEMA)
        except (OSError, sqlite3.DatabaseError) as exc:
            raise InputError(f"cannot open the run registry at {self.path}: {exc} (use --registry PATH)") from None

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30)
        try:
            with db:
                yield db
        finally:
            db.close()

    def new_run_id(self, kind: str, inputs: dict[str, Any]) -> str:
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        return f"{kind}-{stamp}-{config_hash([inputs, os.getpid(), datetime.now(UTC).isoformat()])[:6]}"

    def add(self, run_id: str, kind: str, label: str, inputs: dict[str, Any], summary: dict[str, Any],
            out_dir: Path | None, report: Path | None) -> RunRecord:
        created = datetime.now(UTC).isoformat(timespec="seconds")
        with self._connect() as db:
            db.execute(
                "INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (run_id, kind, created, label, json.dumps(inputs, default=str), json.dumps(summary, default=str),
                 str(out_dir) if out_dir else None, str(report) if report else None),
            )
        return RunRecord(run_id, kind, created, label, inputs, summary,
                         str(out_dir) if out_dir else None, str(report) if report else None)

    def list(self, limit: int = 50, kind: str | None = None) -> list[RunRecord]:
        query = ("SELECT * FROM runs" + (" WHERE kind = ?" if kind else "")
                 + " ORDER BY created_utc DESC, id DESC LIMIT ?")
        args: tuple[Any, ...] = (kind, limit) if kind else (limit,)
        with self._connect() as db:
            rows = db.execute(query, args).fetchall()
        return [_record(r) for r in rows]

    def search(self, q: RunQuery) -> tuple[RunList, int]:
        """The runs ``q`` matches, newest first, one page of them, and how many match in all."""
        where, args = q.where()
        with self._connect() as db:
            total = int(db.execute("SELECT COUNT(*) FROM runs" + where, args).fetchone()[0])
            rows = db.execute("SELECT * FROM runs" + where + " ORDER BY created_utc DESC, id DESC LIMIT ? OFFSET ?",
                              [*args, max(q.limit, 0), max(q.offset, 0)]).fetchall()
        return [_record(r) for r in rows], total

    def facets(self) -> dict[str, Names]:
        """The kinds, models and devices the registry's runs name: what a search can narrow to."""
        with self._connect() as db:
            kinds = [r[0] for r in db.execute("SELECT DISTINCT kind FROM runs ORDER BY kind")]
            models = [r[0] for r in db.execute("SELECT DISTINCT json_extract(inputs, '$.model') AS m FROM runs "
                                               "WHERE m IS NOT NULL ORDER BY m")]
            devices = [r[0] for r in db.execute(
                "SELECT DISTINCT json_extract(inputs, '$.device') AS d FROM runs WHERE d IS NOT NULL UNION "
                "SELECT DISTINCT j.value FROM runs, json_each(runs.inputs, '$.devices') AS j ORDER BY 1")]
        return {"kind": kinds, "model": [str(m) for m in models], "device": [str(d) for d in devices]}

    def get(self, run_id: str) -> RunRecord:
        with self._connect() as db:
            row = db.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
            if row is None:
                like = db.execute("SELECT * FROM runs WHERE id LIKE ? ORDER BY created_utc DESC",
                                  (f"%{run_id}%",)).fetchall()
        if row is not None:
            return _record(row)
        if len(like) == 1:
            return _record(like[0])
        if len(like) > 1:
            raise InputError(f"run '{run_id}' is ambiguous: {', '.join(r[0] for r in like[:5])}")
        raise InputError(f"no run '{run_id}' in {self.path} (see `inferplan runs list`)")

    # ---- evaluation cache ----------------------------------------------------------------
    def cache_get(self, key: str) -> Any | None:
        with self._connect() as db:
            row = db.execute("SELECT value FROM cache WHERE key = ?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def cache_put(self, key: str, value: Any) -> None:
        with self._connect() as db:
            db.execute("INSERT OR REPLACE INTO cache VALUES (?, ?, ?)",
                       (key, json.dumps(value, default=str), datetime.now(UTC).isoformat(timespec="seconds")))


def _record(row: tuple[Any, ...]) -> RunRecord:
    return RunRecord(row[0], row[1], row[2], row[3], json.loads(row[4]), json.loads(row[5]), row[6], row[7])
