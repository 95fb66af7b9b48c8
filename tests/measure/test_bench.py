"""`inferplan bench` against a real server on loopback: records, registry, report, and failures kept."""

from __future__ import annotations

import csv
import http.server
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from inferplan.measure.local_server import free_port, transformers_server
from inferplan.measure.request_record import RequestRecord
from inferplan.runs import BenchConfig, BenchRun, run_bench
from inferplan.store import Registry

CLI = [sys.executable, "-m", "inferplan.cli"]


def run(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"INFERPLAN_REGISTRY": str(tmp / "runs.sqlite")}
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=300, cwd=tmp, env=env)


def rows(folder: Path) -> list[dict[str, str]]:
    with (folder / "requests.csv").open() as fh:
        return list(csv.DictReader(fh))


def test_bench_replays_a_workload_and_records_every_request(server_url: str, tmp_path: Path) -> None:
    r = run(tmp_path, "bench", server_url, "--workload", "chat", "--rate", "8", "--num-requests", "16",
            "--max-input-tokens", "120", "--max-output-tokens", "12", "--slo", "ttft_p90=5s", "--json")
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)
    assert s["num_requests"] == 16 and s["num_finished"] == 16 and s["num_rejected"] == 0
    assert s["ignore_eos"] is False  # transformers serve rejects the field; the probe found out
    folder = tmp_path / s["out_dir"]
    recs = rows(folder)
    assert len(recs) == 16
    for rec in recs:
        assert rec["status"] == "finished"
        # the tiny model has no end-of-sequence token, so the server honours max_tokens exactly
        assert int(rec["output_tokens"]) == int(rec["requested_output_tokens"])
        assert int(rec["input_tokens"]) == int(rec["server_prompt_tokens"])  # one word, one token
        assert 0 < float(rec["ttft_s"]) < float(rec["e2e_s"])
    times = [json.loads(line) for line in (folder / "token_times.jsonl").read_text().splitlines()]
    for t, rec in zip(times, recs, strict=True):
        gaps = t["token_times_s"]
        # one time per streamed text chunk: a chunk per token, or fewer where the server coalesces tokens into
        # one event under load (transformers serve does at times on a busy 2-core machine)
        assert 1 <= len(gaps) <= int(rec["output_tokens"])
        assert all(a <= b for a, b in zip(gaps, gaps[1:], strict=False))  # time never goes back
        assert gaps[-1] <= float(rec["e2e_s"]) + 1e-6
    # sent in arrival order, at (or just after) the arrival times
    arrivals = [float(x["arrival_s"]) for x in recs]
    assert arrivals == sorted(arrivals)
    assert all(0 <= float(x["queue_s"]) < 0.5 for x in recs)
    html = (folder / "report.html").read_text()
    assert "Benchmark" in html and "<script src=" not in html  # plotly inlined: opens offline
    listed = run(tmp_path, "runs", "list", "--json")
    assert any(x["kind"] == "bench" and x["id"] == s["run_id"] for x in json.loads(listed.stdout))
    # the bench's requests.csv replays in the simulator as a trace, request for request
    sim = run(tmp_path, "simulate", "llama-3.2-1b", "--device", "h100-sxm", "--workload",
              str(folder / "requests.csv"), "--json")
    assert sim.returncode == 0, sim.stderr
    sim_run = json.loads(sim.stdout)
    assert sim_run["num_requests"] == 16
    # compare: measured vs simulated, metric by metric, and a report with both CDFs
    cmp_ = run(tmp_path, "compare", s["run_id"], sim_run["run_id"], "--json")
    assert cmp_.returncode == 0, cmp_.stderr
    c = json.loads(cmp_.stdout)
    by_metric = {r["metric"]: r for r in c["metrics"]}
    ttft = by_metric["ttft_s.p50"]
    assert ttft["a"] == pytest.approx(s["ttft_s"]["p50"]) and ttft["b"] == pytest.approx(sim_run["ttft_s"]["p50"])
    assert ttft["change_pct"] == pytest.approx(100 * (ttft["b"] - ttft["a"]) / ttft["a"])
    report = Path(c["report"]) if Path(c["report"]).is_absolute() else tmp_path / c["report"]
    html = report.read_text()
    assert s["run_id"] in html and sim_run["run_id"] in html
    missing = run(tmp_path, "compare", s["run_id"], "sim-nope")
    assert missing.returncode == 2 and "Traceback" not in missing.stderr


def test_closed_loop_keeps_at_most_the_concurrency_in_flight(server_url: str, tmp_path: Path) -> None:
    cfg = BenchConfig(url=server_url, workload="code", num_requests=10, concurrency=2, honour_arrivals=False,
                      max_input_tokens=64, max_output_tokens=8, api="chat")
    run_ = run_bench(cfg, out_dir=tmp_path, registry=Registry(tmp_path / "r.sqlite"))
    assert all(r.status == "finished" for r in run_.records)
    events = sorted([(r.sent_s, 1) for r in run_.records] + [(r.done_s, -1) for r in run_.records],
                    key=lambda e: (e[0], e[1]))
    level = peak = 0
    for _, step in events:
        level += step
        peak = max(peak, level)
    assert peak <= 2


def test_unreachable_url_is_a_clear_error(tmp_path: Path) -> None:
    r = run(tmp_path, "bench", f"http://127.0.0.1:{free_port()}/v1", "--num-requests", "2")
    assert r.returncode == 2
    assert "cannot reach" in r.stderr and "Traceback" not in r.stderr


class _NotOpenAI(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self._send(200, b"<html>hello</html>", "text/html")

    def do_POST(self) -> None:
        if self.path.endswith("/completions") and "errors" in self.server.mode:  # type: ignore[attr-defined]
            self._send(500, b'{"error": "out of memory"}', "application/json")
        else:
            self._send(404, b"not found", "text/plain")

    def _send(self, code: int, body: bytes, ctype: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(params=["not-openai", "errors"])
def odd_server(request: pytest.FixtureRequest) -> Iterator[tuple[str, str]]:
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NotOpenAI)
    srv.mode = request.param  # type: ignore[attr-defined]
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/v1", request.param
    srv.shutdown()
    srv.server_close()


def test_a_server_that_is_not_openai_or_fails_every_request_stops_the_run(odd_server: tuple[str, str],
                                                                          tmp_path: Path) -> None:
    url, mode = odd_server
    r = run(tmp_path, "bench", url, "--model", "m", "--num-requests", "2")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert ("HTTP 500" in r.stderr) if mode == "errors" else ("not an OpenAI-compatible endpoint" in r.stderr)


def test_a_server_dying_mid_run_keeps_the_records_already_collected(tiny_model: Path, tmp_path: Path) -> None:
    """Every request is accounted for: finished before the server stopped, failed with a reason after."""
    result: list[BenchRun] = []
    three_done = threading.Event()
    done: list[RequestRecord] = []

    def note(rec: RequestRecord) -> None:
        done.append(rec)
        if len(done) >= 3:
            three_done.set()

    with transformers_server(tiny_model) as url:
        cfg = BenchConfig(url=url, workload="chat", rate=4, num_requests=12, max_input_tokens=32, max_output_tokens=4,
                          timeout_s=20)
        thread = threading.Thread(target=lambda: result.append(
            run_bench(cfg, out_dir=tmp_path, registry=Registry(tmp_path / "r.sqlite"), on_done=note)))
        thread.start()
        assert three_done.wait(timeout=120)
    # the server is gone now; arrivals keep coming ~0.25 s apart
    thread.join(timeout=120)
    recs = result[0].records
    assert len(recs) == 12
    finished = [r for r in recs if r.status == "finished"]
    failed = [r for r in recs if r.status == "failed"]
    assert len(finished) >= 3 and failed and len(finished) + len(failed) == 12
    assert all("connection" in r.error or "Error" in r.error for r in failed)
    on_disk = rows(result[0].out_dir)
    assert [x["status"] for x in on_disk] == [r.status for r in recs]
    assert result[0].summary.num_rejected == len(failed)
