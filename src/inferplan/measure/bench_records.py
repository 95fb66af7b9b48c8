"""Bench records in the simulator's shapes: the same requests.csv columns and the same summary keys.

So `inferplan compare`, `runs` and the report read a bench run exactly like a
simulation, and a bench's requests.csv replays in `inferplan simulate` as a
generic trace (arrival_s, input_tokens, output_tokens).
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from inferplan.fileio import write_text_atomic
from inferplan.measure.request_record import RequestRecord
from inferplan.sim.metrics import LogHistogram
from inferplan.sim.slo import SLO
from inferplan.sim.state import REQUEST_COLUMNS
from inferplan.sim.summary import check_slos, latency_stats, meets_slos

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


def bench_summary(records: list[RequestRecord], slos: tuple[SLO, ...], wall_s: float) -> dict[str, Any]:
    """The simulator's summary keys, measured; plus what only a real server shows (errors, early stops)."""
    n = len(records)
    finished = np.array([r.status == "finished" for r in records], dtype=bool)
    lat = _latencies(records)
    itl = LogHistogram()
    gaps = [g for r in records if r.status == "finished" for g in r.gaps_s]
    if gaps:
        itl.add(np.maximum(np.array(gaps), 1e-7))
    fin = [r for r in records if r.status == "finished"]
    out_tokens = sum(r.output_tokens for r in fin)
    in_tokens = sum(r.prompt_tokens if r.prompt_tokens > 0 else r.input_tokens for r in fin)
    span = max(wall_s, 1e-9)
    ok = meets_slos(lat, finished, slos)
    reasons: dict[str, int] = {}
    for r in records:
        if r.status != "finished":
            reasons[failure_kind(r)] = reasons.get(failure_kind(r), 0) + 1
    short = sum(1 for r in fin if r.output_tokens < r.requested_output_tokens)
    checks = check_slos(slos, {k: v[finished] for k, v in lat.items()}, itl.quantile)
    return {
        "num_requests": n,
        "num_finished": int(finished.sum()),
        "num_rejected": n - int(finished.sum()),
        "rejected_by_reason": reasons,  # the simulator's name, read by compare and the reports
        "num_failed": n - int(finished.sum()),
        "failed_by_reason": dict(reasons),
        "makespan_s": wall_s,
        "ttft_s": latency_stats(lat["ttft"][finished]),
        "tpot_s": latency_stats(lat["tpot"][finished]),
        "itl_s": {"p50": itl.quantile(0.5), "p90": itl.quantile(0.9), "p99": itl.quantile(0.99), "mean": itl.mean},
        "e2e_s": latency_stats(lat["e2e"][finished]),
        "queue_delay_s": latency_stats(lat["queue"][finished]),
        "throughput_output_tokens_per_s": out_tokens / span,
        "throughput_input_tokens_per_s": in_tokens / span,
        "throughput_requests_per_s": len(fin) / span,
        "goodput_requests_per_s": int(ok.sum()) / span,
        "slo_attainment": float(ok.sum()) / n if slos and n else None,
        "slos": checks,
        "slos_met": all(c["met"] for c in checks) and bool(finished.all()) if slos else None,
        "num_output_short": short,
        "output_tokens": out_tokens,
    }


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
