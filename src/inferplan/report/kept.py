"""What a recorded run kept beside its registry row: its files, its charts' digest, its latencies, its plan.

Everything here reads the files under the run's recorded folder (``digest.json``, ``verification.json``,
``plan.json``, ``requests.csv``), never the live result.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from inferplan.errors import InputError
from inferplan.measure.bench_records import read_request_latencies
from inferplan.sim.digest import RunDigest
from inferplan.store import RunRecord

Array = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class RunFile:
    """A file a run wrote, by its name inside the run's folder (what a download link may name)."""

    name: str
    path: Path
    size: int


def run_files(r: RunRecord) -> list[RunFile]:
    """The files under the run's recorded folder (deploy files included), by their names relative to it."""
    if not r.out_dir or not Path(r.out_dir).is_dir():
        return []
    root = Path(r.out_dir)
    return [RunFile(p.relative_to(root).as_posix(), p, p.stat().st_size) for p in sorted(root.rglob("*"))
            if p.is_file() and not p.name.startswith(".")]


def run_digest(r: RunRecord) -> RunDigest | None:
    """The charts' data a simulation (``digest.json``) or a plan's verification (``verification.json``) kept."""
    for name in ("digest.json", "verification.json"):
        path = Path(r.out_dir or "") / name
        if r.out_dir and path.is_file():
            try:
                return RunDigest.read(path)
            except (ValueError, KeyError, TypeError) as exc:
                raise InputError(f"run {r.id}: {path} cannot be read ({exc})") from None
    return None


def run_latencies(r: RunRecord) -> dict[str, Array] | None:
    """Finished requests' latencies: from the run's digest, else its requests.csv; None when it kept neither."""
    d = run_digest(r)
    if d is not None:
        return d.latencies
    path = Path(r.out_dir or "") / "requests.csv"
    return read_request_latencies(path) if r.out_dir and path.is_file() else None


def plan_doc(r: RunRecord) -> dict[str, Any] | None:
    path = Path(r.out_dir or "") / "plan.json"
    if r.kind != "plan" or not r.out_dir or not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text())
    except ValueError as exc:
        raise InputError(f"run {r.id}: {path} is not JSON ({exc})") from None
    return doc if isinstance(doc, dict) else None
