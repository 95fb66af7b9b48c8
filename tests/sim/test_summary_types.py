"""The typed run summary: its numbers on hand-computed cases, its published JSON, and reading it back."""

from __future__ import annotations

import json
import pickle
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from inferplan.cli import run as cli
from inferplan.errors import InputError
from inferplan.measure.bench import RequestRecord
from inferplan.measure.bench_records import bench_summary
from inferplan.runs import SimulationConfig, simulate_config
from inferplan.sim.metrics import LogHistogram
from inferplan.sim.slo import parse_slos
from inferplan.sim.summary import check_slos, latency_stats, measured_summary
from inferplan.sim.summary_types import BenchContext, Latency, SimContext, SloCheck, Summary
from inferplan.store import Registry

# the keys every summary publishes, in their published order (the registry and --json keep it)
COMMON = ["num_requests", "num_finished", "num_rejected", "rejected_by_reason", "makespan_s", "ttft_s", "tpot_s",
          "itl_s", "e2e_s", "queue_delay_s", "throughput_output_tokens_per_s", "throughput_input_tokens_per_s",
          "throughput_requests_per_s", "goodput_requests_per_s", "slo_attainment", "slos", "slos_met"]
SIM_ONLY = ["num_preemptions", "prefix_cache_hit_tokens", "cost_per_hour", "cost_per_million_output_tokens",
            "energy_j", "energy_j_per_output_token", "utilization", "num_replicas", "num_steps", "policy", "router",
            "overload", "host_copied_tokens"]
SIM_RUN = ["workload", "deployment", "prefill_replicas", "step_time_range_pct", "ranges", "range_basis"]
BENCH_RUN = ["workload", "endpoint", "model", "ignore_eos", "notes"]
SLOS = parse_slos("ttft_p90=1s,tpot_p90=50ms")


@pytest.fixture(scope="module")
def sim() -> Summary:
    """A recorded simulation's summary: one minute of chat on one H100."""
    return simulate_config(SimulationConfig(workload="chat", rate=5, duration_s=60, slo="ttft_p90=1s,tpot_p90=50ms"))[1]


def record(i: int, status: str = "finished", tokens: int = 4, gap_s: float = 0.01, error: str = "",
           requested: int = 4) -> RequestRecord:
    """A request sent at i/10 s whose first token came 0.1 s later, then one every ``gap_s``."""
    times = [0.1 + k * gap_s for k in range(tokens)]
    return RequestRecord(i, i / 10, 20, requested, sent_s=i / 10, status=status, error=error, output_tokens=tokens,
                         token_times_s=times, done_s=i / 10 + (times[-1] if times else 0.5))


BENCH = [record(0), record(1, gap_s=0.03), record(2, tokens=2), record(3, "failed", 0, error="HTTP 503: loading")]


def test_latency_percentiles_of_a_known_array() -> None:
    """numpy's linear percentiles of 1..5 (NaN and infinity dropped): p90 = 4 + 0.6, p99 = 4 + 0.96."""
    s = latency_stats(np.array([5.0, 1.0, np.nan, 3.0, 2.0, np.inf, 4.0]))
    assert s == Latency(p50=3.0, p90=pytest.approx(4.6), p99=pytest.approx(4.96), mean=3.0)
    assert latency_stats(np.array([np.nan])) == Latency(p50=None, p90=None, p99=None, mean=None)


def test_slo_checks_read_the_percentile_each_objective_names() -> None:
    lat = {"ttft": np.array([0.2, 0.4, 0.6, 0.8, 3.0]), "tpot": np.array([0.01, 0.02, np.nan, 0.04, 0.05])}
    checks = check_slos(SLOS, lat, lambda q: q)
    assert checks == (SloCheck(slo=str(SLOS[0]), value_s=pytest.approx(2.12), met=False),  # 0.8 + 0.6 * 2.2
                      SloCheck(slo=str(SLOS[1]), value_s=pytest.approx(0.047), met=True))  # 0.04 + 0.7 * 0.01


def test_a_small_run_counted_by_hand() -> None:
    """Four requests over 10 s, the last rejected: 3 finished, one of them too slow for TTFT p90 <= 1 s."""
    lat = {"ttft": np.array([0.5, 0.5, 1.5, np.nan]), "tpot": np.array([0.01, 0.02, 0.03, np.nan]),
           "e2e": np.array([1.0, 2.0, 3.0, np.nan]), "queue": np.array([0.0, 0.1, 0.2, np.nan])}
    itl = LogHistogram()
    itl.add(np.array([0.01, 0.02]))
    s = measured_summary(lat, np.array([True, True, True, False]), parse_slos("ttft_p50=1s"), itl, makespan_s=10.0,
                         input_tokens=300, output_tokens=60, num_rejected=1, rejected_by_reason={"queue full": 1})
    assert (s.num_requests, s.num_finished, s.num_rejected) == (4, 3, 1)
    assert (s.throughput_output_tokens_per_s, s.throughput_input_tokens_per_s) == (6.0, 30.0)
    assert s.throughput_requests_per_s == pytest.approx(0.3) and s.goodput_requests_per_s == pytest.approx(0.2)
    assert s.slo_attainment == 0.5 and s.slos[0].met  # two of four within every SLO; the TTFT p50 is 0.5 s
    assert s.slos_met is False  # a rejection misses the SLOs whatever the percentiles say
    assert s.e2e_s == Latency(p50=2.0, p90=pytest.approx(2.8), p99=pytest.approx(2.98), mean=2.0)
    assert (s.sim, s.bench, s.context) == (None, None, None)


def test_a_bench_counts_what_did_not_finish_as_failed_and_rejected() -> None:
    s = bench_summary(BENCH, SLOS, 2.0)
    assert s.bench is not None and (s.num_finished, s.num_rejected, s.bench.num_failed) == (3, 1, 1)
    assert s.rejected_by_reason == s.bench.failed_by_reason == {"HTTP 503": 1}
    assert (s.bench.output_tokens, s.bench.num_output_short) == (10, 1)  # 4 + 4 + 2 tokens; request 2 stopped short
    assert s.ttft_s.p50 == pytest.approx(0.1) and s.slos_met is False and s.sim is None


def test_published_keys_are_exactly_these(sim: Summary) -> None:
    """A field added to `Summary` but not to its JSON (or the other way round) fails here."""
    assert list(replace(sim, context=None).to_json()) == COMMON + SIM_ONLY
    assert list(sim.to_json()) == COMMON + SIM_ONLY + SIM_RUN
    bench = bench_summary(BENCH, SLOS, 2.0)
    assert list(bench.to_json()) == [*COMMON[:4], "num_failed", "failed_by_reason", *COMMON[4:],
                                     "num_output_short", "output_tokens"]
    ctx = BenchContext(workload={"name": "chat"}, endpoint="http://127.0.0.1:8000/v1", model="m", ignore_eos=None,
                       notes=())
    assert list(replace(bench, context=ctx).to_json())[-5:] == BENCH_RUN
    for key in ("ttft_s", "tpot_s", "itl_s", "e2e_s", "queue_delay_s"):
        assert list(sim.to_json()[key]) == ["p50", "p90", "p99", "mean"]
    assert list(sim.to_json()["slos"][0]) == ["slo", "value_s", "met"]
    assert list(sim.headline().to_json()) == ["slos_met", "slo_attainment", "ttft_p90_s", "tpot_p90_s",
                                              "num_rejected"]


def test_a_simulation_summary_reads_back_equal(sim: Summary, tmp_path: Path) -> None:
    assert isinstance(sim.context, SimContext) and sim.context.step_time_range_pct is None
    assert Summary.from_json(sim.to_json(), "test") == sim
    path = tmp_path / "summary.json"
    path.write_text(json.dumps(sim.to_json(), indent=2, sort_keys=True))
    assert Summary.from_json(json.loads(path.read_text()), str(path)) == sim  # through a file, as `runs` reads it
    assert pickle.loads(pickle.dumps(sim)) == sim  # the planner's worker processes send summaries back


def test_a_bench_summary_reads_back_equal() -> None:
    ctx = BenchContext(workload={"name": "trace"}, endpoint="http://127.0.0.1:8000/v1", model="tiny",
                       ignore_eos=False, notes=("model not given",))
    s = replace(bench_summary(BENCH, SLOS, 2.0), context=ctx)
    assert Summary.from_json(json.loads(json.dumps(s.to_json())), "test") == s


def test_older_runs_read_back_without_the_keys_added_since(sim: Summary) -> None:
    old = {k: v for k, v in sim.to_json().items()
           if k not in ("overload", "prefill_replicas", "step_time_range_pct", "ranges", "range_basis")}
    back = Summary.from_json(old | {"wall_s": 1.5}, "run sim-old")  # a registry row's own key is ignored
    assert back.sim is not None and back.sim.overload is None
    assert isinstance(back.context, SimContext) and back.context.prefill_replicas == 0
    bench = {k: v for k, v in bench_summary(BENCH, SLOS, 2.0).to_json().items()
             if k not in ("num_failed", "failed_by_reason")}
    counts = Summary.from_json(bench, "run bench-old").bench
    assert counts is not None and (counts.num_failed, counts.failed_by_reason) == (1, {"HTTP 503": 1})


@pytest.mark.parametrize(("stored", "message"), [
    ([1, 2], "run sim-x: its summary is not a JSON object"),
    ({"model": "llama-3.2-1b", "points": []}, "run sim-x: its summary has no 'num_requests'"),
    ("replace:ttft_s=fast", "the summary's 'ttft_s' is 'fast', not a JSON object"),
    ("replace:num_finished=true", "the summary's 'num_finished' is True, not a whole number"),
    ("replace:slos=[{}]", "its summary has no 'slos[0].slo'"),
    ("replace:utilization=[0.5,\"x\"]", "the summary's 'utilization[1]' is 'x', not a number"),
])
def test_a_malformed_summary_is_an_input_error_naming_the_run(sim: Summary, stored: object, message: str) -> None:
    if isinstance(stored, str):
        key, value = stored.removeprefix("replace:").split("=")
        stored = sim.to_json() | {key: json.loads(value) if value[0] in "[{t" else value}
    with pytest.raises(InputError, match=message.replace("[", r"\[").replace("]", r"\]")):
        Summary.from_json(stored, "run sim-x")


def test_runs_show_names_a_run_whose_summary_cannot_be_read(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                            sim: Summary) -> None:
    reg = Registry(tmp_path / "r.sqlite")
    reg.add("sim-broken", "sim", "a damaged row", {}, {"num_requests": "many"}, None, None)
    reg.add("sim-good", "sim", "a good row", {}, sim.to_json(), None, None)
    assert cli(["runs", "show", "sim-broken", "--registry", str(reg.path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: run sim-broken (sim): the summary's 'num_requests' is 'many'") and "Trace" not in err
    assert cli(["runs", "list", "--registry", str(reg.path)]) == 0  # the other rows still list
    listed = capsys.readouterr().out
    assert "sim-broken" in listed and "sim-good" in listed and "TTFT p90" in listed
