"""Bench records in the simulator's shapes: the same requests.csv columns and the same `Summary`.

So `inferplan compare`, `runs` and the report read a bench run exactly like a
simulation, and a bench's requests.csv replays in `inferplan simulate` as a
generic trace (arrival_s, input_tokens, output_tokens).
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import numpy.typing as npt

from inferplan.fileio import write_text_atomic
from inferplan.measure.request_record import RequestRecord
from inferplan.sim.class_summary import class_summaries
from inferplan.sim.metrics import LogHistogram
from inferplan.sim.slo import SLO
from inferplan.sim.state import REQUEST_COLUMNS
from inferplan.sim.summary import measured_summary, meets_slos
from inferplan.sim.summary_types import BenchCounts, Summary
from inferplan.workload.request import Workload

F64 = npt.NDArray[np.float64]
BENCH_COLUMNS = [*REQUEST_COLUMNS, "requested_output_tokens", "server_prompt_tokens", "finish_reason", "error",
                 "received_tokens"]


def failure_kind(rec: RequestRecord) -> str:
    """The short name of why a request did not finish ("truncated", "HTTP 503", "stalled"): the text
    before the first colon of its error, so failures group by what happened, not by their details."""
    if rec.status == "finished":
        return ""
    if rec.status != "failed":
        return "not sent"
    return rec.error.split(":")[0] or "unknown error"


def _latencies(records: list[RequestRecord]) -> dict[str, F64]:
    return {
        "ttft": np.array([r.ttft_s for r in records]),
        "tpot": np.array([r.tpot_s for r in records]),
        "e2e": np.array([r.e2e_s if r.status == "finished" else np.nan for r in records]),
        "queue": np.array([r.sent_s - r.scheduled_s for r in records]),
    }


def bench_summary(records: list[RequestRecord], slos: tuple[SLO, ...], wall_s: float,
                  workload: Workload | None = None) -> Summary:
    """The simulator's summary, measured; plus what only a real server shows (errors, early stops). With the
    ``workload`` sent (records in its order), its classes' deadlines are judged and each class summarized."""
    finished = np.array([r.status == "finished" for r in records], dtype=bool)
    itl = LogHistogram()
    gaps = [g for r in records if r.status == "finished" for g in r.gaps_s]
    if gaps:
        itl.add(np.maximum(np.array(gaps), 1e-7))
    fin = [r for r in records if r.status == "finished"]
    out_tokens = sum(r.output_tokens for r in fin)
    reasons: dict[str, int] = {}
    for r in records:
        if r.status != "finished":
            reasons[failure_kind(r)] = reasons.get(failure_kind(r), 0) + 1
    failed = len(records) - len(fin)
    counts = BenchCounts(num_failed=failed, failed_by_reason=dict(reasons), output_tokens=out_tokens,
                         num_output_short=sum(1 for r in fin if r.output_tokens < r.requested_output_tokens))
    # every request that did not finish counts under the simulator's name too, read by compare and the reports
    lat = _latencies(records)
    sent_in = sum(r.prompt_tokens if r.prompt_tokens > 0 else r.input_tokens for r in fin)
    summary = measured_summary(lat, finished, slos, itl, makespan_s=wall_s, input_tokens=sent_in,
                               output_tokens=out_tokens, num_rejected=failed, rejected_by_reason=reasons, bench=counts,
                               workload=workload)
    if workload is None or len(workload.class_names) < 2:
        return summary
    ok = meets_slos(lat, finished, slos, workload.deadline_s) if summary.slos else None
    served = np.array([r.output_tokens for r in records], dtype=np.int64)
    return replace(summary, classes=class_summaries(workload, lat, finished, ok, served, workload.arrival_s, wall_s))


def write_bench_records(folder: Path, records: list[RequestRecord]) -> tuple[Path, Path]:
    """requests.csv (one row per request) and token_times.jsonl (every chunk's arrival), written atomically.

    A request that did not finish keeps the output length it asked for, so the file replays as the
    workload that was sent; what it received is in received_tokens and token_times.jsonl.
    """
    def f(x: float) -> str:
        return "" if not np.isfinite(x) else f"{x:.6f}"

    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(BENCH_COLUMNS)
    for r in records:
        fin = r.status == "finished"
        gaps = r.gaps_s
        w.writerow([
            r.request_id, f(r.scheduled_s), r.prompt_tokens if r.prompt_tokens > 0 else r.input_tokens,
            r.output_tokens if fin else r.requested_output_tokens, 0, r.status, failure_kind(r),
            f(r.sent_s - r.scheduled_s), f(r.ttft_s) if fin else "", f(r.tpot_s) if fin else "",
            f(r.e2e_s) if fin else "", f(max(gaps)) if fin and gaps else "", "", "",
            r.requested_output_tokens, r.prompt_tokens, r.finish_reason, r.error, r.output_tokens,
        ])
    csv_path, times_path = folder / "requests.csv", folder / "token_times.jsonl"
    write_text_atomic(csv_path, buf.getvalue())
    lines = (json.dumps({"request_id": r.request_id, "sent_s": round(r.sent_s, 6),
                         "token_times_s": [round(t, 6) for t in r.token_times_s]}) for r in records)
    write_text_atomic(times_path, "\n".join(lines) + "\n")
    return csv_path, times_path


def read_request_latencies(path: Path) -> dict[str, F64]:
    """TTFT, TPOT and E2E of finished requests from any run's requests.csv (bench or simulate)."""
    cols: dict[str, list[float]] = {"ttft": [], "tpot": [], "e2e": []}
    with path.open(newline="") as fh:
        for row in csv.DictReader(fh):
            if row.get("status") != "finished":
                continue
            for key in cols:
                v = row.get(f"{key}_s") or ""
                cols[key].append(float(v) if v else np.nan)
    return {k: np.array(v) for k, v in cols.items()}
