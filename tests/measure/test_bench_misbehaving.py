"""`inferplan bench` against a server that misbehaves: every broken response is a failed request with its reason.

A stream cut short, an event that is not JSON or not OpenAI-shaped, a stall, an HTTP error, slow
headers, a reset: each must be recorded as failed, never count as finished or in goodput, and
never stop the run.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from inferplan.runs import BenchConfig, BenchRun, run_bench
from inferplan.sim.summary_types import BenchContext
from inferplan.store import Registry
from tests.measure.misbehaving_server import misbehaving_server, write_trace

NO_CHOICES = """not OpenAI-shaped: an event without 'choices': {"id": "cmpl-x", "object": "text_completion"}"""
CUT = "truncated: the stream closed after 3 of 16 tokens without finish_reason or [DONE]"
# mode -> (the failed request's error, the tokens it kept) with ignore_eos accepted and 16 tokens asked
FAILURES = {
    "cut:3": (CUT, 3),
    "reset:3": ("connection lost: the connection broke after 3 of 16 tokens (ReadError: Connection reset by peer)", 3),
    "garbage:2": ("not JSON: the event after 2 of 16 tokens is 'this is not json'", 2),
    "no-choices:2": (NO_CHOICES, 2),
    "stall:2": ("stalled: no data for 1 s after 2 of 16 tokens", 2),
    "http:429": ('HTTP 429: {"error": {"message": "rate limit reached", "code": 429}}', 0),
    "http:500": ('HTTP 500: {"error": {"message": "CUDA out of memory", "code": 500}}', 0),
    "http:503": ('HTTP 503: {"error": {"message": "server is loading the model", "code": 503}}', 0),
    "slow-headers": ("slow headers: no response headers within 1 s", 0),
    "length:3": ("truncated: 3 of 16 tokens although ignore_eos asked for all 16 (finish_reason 'length')", 3),
    "stop:3": ("truncated: 3 of 16 tokens although ignore_eos asked for all 16 (finish_reason 'stop')", 3),
    "length:0": ("no text: the stream ended without any text", 0),
    "not-streamed": ("not an event stream: the response had no 'data:' lines (Content-Type application/json)", 0),
}


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with misbehaving_server() as u:
        yield u


def bench(url: str, tmp: Path, modes: list[str], **cfg: Any) -> BenchRun:
    """run_bench over a trace whose request i is answered in ``modes[i]``'s way, each read timing out after 1 s."""
    trace = write_trace(tmp / "trace.csv", modes)
    config = BenchConfig(url=url, workload=str(trace), timeout_s=1.0, **cfg)
    return run_bench(config, out_dir=tmp, registry=Registry(tmp / "r.sqlite"))


def bench_context(run: BenchRun) -> BenchContext:
    assert isinstance(run.summary.context, BenchContext)
    return run.summary.context


def rows(folder: Path) -> list[dict[str, str]]:
    with (folder / "requests.csv").open(newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.parametrize("mode", list(FAILURES))
def test_a_misbehaving_response_is_a_failed_request_with_its_reason(url: str, tmp_path: Path, mode: str) -> None:
    error, kept = FAILURES[mode]
    run = bench(url, tmp_path, ["ok", mode, "ok"])
    assert bench_context(run).ignore_eos is True
    ok1, bad, ok2 = run.records
    assert (ok1.status, ok2.status) == ("finished", "finished")  # the failure did not stop the run
    assert (ok1.output_tokens, len(ok2.token_times_s)) == (16, 16)
    assert bad.status == "failed" and bad.error == error
    assert len(bad.token_times_s) == kept == bad.output_tokens  # the partial timing stays visible
    s = run.summary
    kind = error.split(":")[0]
    assert s.bench is not None
    assert (s.num_finished, s.bench.num_failed, s.num_rejected) == (2, 1, 1)
    assert s.bench.failed_by_reason == s.rejected_by_reason == {kind: 1}
    assert s.goodput_requests_per_s == pytest.approx(2 / s.makespan_s)
    assert s.bench.output_tokens == 32  # only the finished requests' tokens
    csv_bad = rows(run.out_dir)[1]
    assert (csv_bad["status"], csv_bad["reject_reason"], csv_bad["error"]) == ("failed", kind, error)
    assert (csv_bad["output_tokens"], csv_bad["received_tokens"], csv_bad["ttft_s"]) == ("16", str(kept), "")


def test_the_chat_api_is_held_to_the_same_rules(url: str, tmp_path: Path) -> None:
    run = bench(url, tmp_path, ["cut:3", "ok", "no-choices:2", "done-only"], api="chat")
    assert [r.status for r in run.records] == ["failed", "finished", "failed", "finished"]
    assert run.records[0].error == CUT
    assert run.records[2].error == NO_CHOICES
    assert run.records[3].finish_reason == "" and run.records[3].output_tokens == 16  # [DONE] alone ends a stream


def test_without_ignore_eos_a_stop_is_an_early_finish_but_a_short_length_is_a_truncation(tmp_path: Path) -> None:
    with misbehaving_server(accept_ignore_eos=False) as u:
        run = bench(u, tmp_path, ["stop:3", "length:3", "cut:3", "ok"])
    assert bench_context(run).ignore_eos is False  # the server answered ignore_eos with HTTP 400; the probe found out
    stop, length, cut, ok = run.records
    assert (stop.status, stop.finish_reason, stop.output_tokens) == ("finished", "stop", 3)
    assert (length.status, length.error) == ("failed", "truncated: finish_reason 'length' after 3 of 16 tokens")
    assert (cut.status, cut.error) == ("failed", CUT)
    assert ok.status == "finished"
    s = run.summary
    assert s.bench is not None
    assert (s.num_finished, s.bench.num_output_short, s.bench.failed_by_reason) == (2, 1, {"truncated": 2})


def test_a_server_that_accepts_ignore_eos_but_stops_early_is_benched_without_it(tmp_path: Path) -> None:
    """The probe asks for 2 forced tokens and gets 1: the field is not honoured, so the run goes without it."""
    with misbehaving_server(early_stop=1) as u:
        run = bench(u, tmp_path, ["ok", "ok"])
    assert bench_context(run).ignore_eos is False
    assert any("does not honour ignore_eos" in n for n in run.notes)
    assert [(r.status, r.output_tokens) for r in run.records] == [("finished", 1), ("finished", 1)]
    assert run.summary.bench is not None and run.summary.bench.num_output_short == 2


def test_cli_bench_counts_failures_by_reason_and_keeps_them_out_of_the_trace_as_finished(url: str,
                                                                                          tmp_path: Path) -> None:
    modes = ["ok", "cut:3", "garbage:2", "http:503", "ok", "stall:2", "cut:3", "http:429", "slow-headers",
             "reset:3", "no-choices:2", "ok"]
    trace = write_trace(tmp_path / "trace.csv", modes)
    env = os.environ | {"INFERPLAN_REGISTRY": str(tmp_path / "runs.sqlite")}
    r = subprocess.run([sys.executable, "-m", "inferplan.cli", "bench", url, "--workload", str(trace),
                        "--timeout", "1", "--slo", "ttft_p90=5s", "--json"],
                       capture_output=True, text=True, timeout=60, cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr
    folder = tmp_path / json.loads(r.stdout)["out_dir"]
    s = json.loads((folder / "summary.json").read_text())
    assert (s["num_requests"], s["num_finished"], s["num_failed"]) == (12, 3, 9)
    assert s["failed_by_reason"] == {"truncated": 2, "HTTP 429": 1, "HTTP 503": 1, "connection lost": 1,
                                     "not JSON": 1, "not OpenAI-shaped": 1, "slow headers": 1, "stalled": 1}
    assert s["slo_attainment"] == pytest.approx(3 / 12) and s["slos_met"] is False
    assert s["goodput_requests_per_s"] == pytest.approx(3 / s["makespan_s"])
    assert s["output_tokens"] == 48
    recs = rows(folder)
    assert [x["status"] for x in recs] == ["finished" if m == "ok" else "failed" for m in modes]
    for x, m in zip(recs, modes, strict=True):
        # the trace replays the workload as sent: a failed request keeps the length it asked for, no latency
        assert x["output_tokens"] == "16"
        if m != "ok":
            assert x["error"] == FAILURES[m][0] and x["reject_reason"] == FAILURES[m][0].split(":")[0]
            assert (x["ttft_s"], x["e2e_s"], x["received_tokens"]) == ("", "", str(FAILURES[m][1]))
    times = [json.loads(line) for line in (folder / "token_times.jsonl").read_text().splitlines()]
    assert [len(t["token_times_s"]) for t in times] == [16 if m == "ok" else FAILURES[m][1] for m in modes]


def test_a_bench_of_classes_sends_each_priority_and_judges_each_class(tmp_path: Path) -> None:
    """Chat (priority 0) beside a batch due within a minute (priority 1): every request carries its class's
    priority, as vLLM's and SGLang's servers read it; the summary has both classes and the batch's deadline."""
    bodies: list[dict[str, Any]] = []
    with misbehaving_server(bodies=bodies) as url:
        config = BenchConfig(url=url, workload="chat:count=6,rate=20 + batch:count=4,deadline=1m", timeout_s=5.0,
                             max_input_tokens=40, max_output_tokens=8)
        run = run_bench(config, out_dir=tmp_path, registry=Registry(tmp_path / "r.sqlite"))
    sent = [b for b in bodies if "priority" in b]
    assert len(sent) == 10 and sorted(b["priority"] for b in sent) == [0] * 6 + [1] * 4
    s = run.summary
    assert [c.name for c in s.classes] == ["chat", "batch"] and s.num_finished == 10
    assert [c.slo for c in s.slos] == ["batch done within 1m"] and s.slos[0].met


def test_cli_bench_takes_repeated_workload_classes(url: str, tmp_path: Path) -> None:
    env = os.environ | {"INFERPLAN_REGISTRY": str(tmp_path / "runs.sqlite")}
    r = subprocess.run([sys.executable, "-m", "inferplan.cli", "bench", url, "--workload", "chat:count=4,rate=20",
                        "--workload", "batch:count=2,deadline=1m", "--max-input-tokens", "40",
                        "--max-output-tokens", "8", "--json"],
                       capture_output=True, text=True, timeout=60, cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert [c["name"] for c in doc["classes"]] == ["chat", "batch"] and doc["classes"][1]["deadline_met"]
