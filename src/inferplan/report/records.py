"""Per-request records as CSV, written atomically (temp file, then rename)."""

from __future__ import annotations

import csv
import os
import tempfile
from pathlib import Path

import numpy as np

from inferplan.fileio import publish
from inferplan.sim.loop import SimResult
from inferplan.sim.state import REJECT_REASONS, REQUEST_COLUMNS, STATUS_NAMES
from inferplan.sim.summary import request_latencies


def write_request_records(path: Path, res: SimResult) -> Path:
    t = res.table
    lat = request_latencies(t)

    def fmt(x: np.ndarray) -> list[str]:
        return ["" if not np.isfinite(v) else f"{v:.6f}" for v in x.tolist()]

    cols = [
        [str(i) for i in range(len(t))],
        fmt(t.arrival),
        t.input.astype(str).tolist(),
        t.output.astype(str).tolist(),
        t.replica.astype(str).tolist(),
        [STATUS_NAMES[s] for s in t.status.tolist()],
        [REJECT_REASONS[r] for r in t.reject_reason.tolist()],
        fmt(lat["queue"]),
        fmt(lat["ttft"]),
        fmt(lat["tpot"]),
        fmt(lat["e2e"]),
        fmt(np.where(t.status == 3, t.max_itl, np.nan)),
        t.num_preemptions.astype(str).tolist(),
        t.prefix_hit_tokens.astype(str).tolist(),
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(REQUEST_COLUMNS)
            w.writerows(zip(*cols, strict=True))
        publish(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
