"""What a run's charts need, small enough to keep beside it: latency distributions and time series.

A report is drawn from a digest, not from the whole ``SimResult``, so the same figures can be drawn again
later (the workbench, ``compare``) from the ``digest.json`` a run keeps, and a plan's verification run can
carry its distributions back from the worker that simulated it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from inferplan.fileio import write_text_atomic
from inferplan.sim.loop import SimResult
from inferplan.sim.summary import request_latencies

LATENCIES = ("ttft", "tpot", "e2e", "queue")
SERIES = ("decode_tokens_per_s", "running", "waiting", "kv_used_pct", "busy_pct")
MAX_POINTS = 2000  # per distribution: a CDF drawn from this many order statistics is exact to the eye

Array = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class RunDigest:
    """Sorted latency samples of finished requests (thinned to order statistics), and time series.

    ``series[name]`` holds one line per replica over ``t_s``; ``arrivals_per_s`` is over ``t_s`` too."""

    latencies: dict[str, Array]
    num_finished: int
    bucket_s: float
    t_s: Array
    arrivals_per_s: Array
    series: dict[str, list[Array]]

    def to_json(self) -> dict[str, Any]:
        return {"latencies_s": {k: _floats(v) for k, v in self.latencies.items()}, "num_finished": self.num_finished,
                "bucket_s": self.bucket_s, "t_s": _floats(self.t_s), "arrivals_per_s": _floats(self.arrivals_per_s),
                "series": {k: [_floats(line) for line in v] for k, v in self.series.items()}}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> RunDigest:
        def arr(x: Any) -> Array:
            return np.asarray(x, dtype=np.float64)

        return cls(latencies={k: arr(v) for k, v in doc["latencies_s"].items()}, num_finished=int(doc["num_finished"]),
                   bucket_s=float(doc["bucket_s"]), t_s=arr(doc["t_s"]), arrivals_per_s=arr(doc["arrivals_per_s"]),
                   series={k: [arr(line) for line in v] for k, v in doc["series"].items()})

    def write(self, path: Path) -> Path:
        write_text_atomic(path, json.dumps(self.to_json(), separators=(",", ":")) + "\n")
        return path

    @classmethod
    def read(cls, path: Path) -> RunDigest:
        return cls.from_json(json.loads(path.read_text()))


def digest(res: SimResult) -> RunDigest:
    """The digest of a finished simulation."""
    lat = request_latencies(res.table)
    fin = res.table.status == 3
    arrays = [r.series.as_arrays() for r in res.replicas]
    width = res.replicas[0].series.bucket_s
    t = arrays[0]["t_s"]
    counts, _ = np.histogram(res.workload.arrival_s, bins=max(1, t.size), range=(0, max(t.size, 1) * width))
    series = {
        "decode_tokens_per_s": [a["decode_tokens"] / width for a in arrays],
        "running": [a["running_s"] / width for a in arrays],
        "waiting": [a["waiting_s"] / width for a in arrays],
        "kv_used_pct": [100 * a["kv_blocks_max"] / max(r.state.pool.num_blocks, 1)
                        for a, r in zip(arrays, res.replicas, strict=True)],
        "busy_pct": [100 * a["busy_s"] / width for a in arrays],
    }
    return RunDigest(latencies={k: thin_sorted(lat[k][fin]) for k in LATENCIES}, num_finished=int(fin.sum()),
                     bucket_s=float(width), t_s=t, arrivals_per_s=counts / width, series=series)


def thin_sorted(values: Array, max_points: int = MAX_POINTS) -> Array:
    """The finite values sorted, kept to at most ``max_points`` evenly spaced order statistics (ends included)."""
    x: Array = np.sort(values[np.isfinite(values)])
    if x.size <= max_points:
        return x
    kept: Array = x[np.unique(np.linspace(0, x.size - 1, max_points).round().astype(int))]
    return kept


def _floats(x: Array) -> list[float | None]:
    return [None if not np.isfinite(v) else round(float(v), 7) for v in x.tolist()]
