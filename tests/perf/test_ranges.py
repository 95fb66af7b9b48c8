"""Ranges from calibration residuals: the arithmetic, the shipped table, and plans at a confidence."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from inferplan.errors import InputError
from inferplan.perf.ranges import Spread, latency_spread, spread_for
from inferplan.plan.margins import tightened
from inferplan.sim.slo import parse_slos

SPREAD = Spread(levels=(0.0, 0.5, 1.0), errors=(-0.4, -0.2, 0.0), count=3, source="test")


def test_a_prediction_stands_for_a_truth_of_predicted_over_one_plus_the_error() -> None:
    """Errors -40% .. 0 (under-predictions): a 100 ms prediction is 104.2-156.3 ms at 10-90%; a 125 ms limit
    needs e >= -0.2, the median, so it holds with probability 0.5; at 0.9 confidence plan a 1 s SLO as 0.64 s."""
    lo, hi = SPREAD.truth_range(100.0)
    assert (lo, hi) == pytest.approx((100 / 0.96, 100 / 0.64))
    assert SPREAD.probability_at_most(100.0, 125.0) == pytest.approx(0.5)
    assert SPREAD.probability_at_most(100.0, 50.0) == 0.0 and SPREAD.probability_at_most(100.0, 200.0) == 1.0
    assert SPREAD.limit_to_plan_for(1.0, 0.9) == pytest.approx(0.64)


def test_the_shipped_residuals_cover_datacenter_gpus_only() -> None:
    for phase in ("throughput", "ttft", "itl", "tpot", "e2e"):
        spread = spread_for("datacenter-gpu", phase)
        assert spread is not None and spread.count >= 5 and list(spread.levels) == sorted(spread.levels)
        assert list(spread.errors) == sorted(spread.errors)  # quantiles never decrease
    assert spread_for("cpu", "ttft") is None and spread_for("edge-soc", "throughput") is None


def test_confidence_tightens_what_the_residuals_cover_and_keeps_the_rest() -> None:
    slos = parse_slos("ttft_p90=2s,tpot_p90=100ms")
    spread = spread_for("datacenter-gpu", "ttft")
    assert spread is not None
    planned, notes = tightened(slos, [("datacenter-gpu", "vllm"), ("edge-soc", "vllm")], 0.9)
    assert planned[0].threshold_s == pytest.approx(min(2.0, 2.0 * (1 + spread.error_at(0.1))))
    kept, why = tightened(slos, [("edge-soc", "vllm")], 0.9)
    assert kept == slos and "no calibration residuals" in why[0]
    with pytest.raises(InputError, match="--confidence must be at least 0.5"):
        tightened(slos, [("datacenter-gpu", "vllm")], 0.3)


def test_llamacpp_latencies_take_their_spread_from_llama_bench_speeds() -> None:
    """A speed over-predicted by e is a time under-predicted by 1 / (1 + e) - 1: the 90% quantile of the
    prompt-speed errors is the 10% quantile of the TTFT errors, and so on; ranges then hold the truth."""
    pp = spread_for("apple-soc", "pp")
    found = latency_spread("apple-soc", "llamacpp", "ttft")
    assert pp is not None and found is not None and found[1] == "pp"
    ttft = found[0]
    assert ttft.error_at(0.1) == pytest.approx(1 / (1 + pp.error_at(0.9)) - 1)
    assert ttft.error_at(0.9) == pytest.approx(1 / (1 + pp.error_at(0.1)) - 1)
    assert list(ttft.errors) == sorted(ttft.errors) and ttft.count == pp.count
    # a predicted TTFT of 1 s stands for a truth of 1 s x (1 + e_speed): 10-90% of the prompt-speed errors
    low, high = ttft.truth_range(1.0)
    assert (low, high) == pytest.approx((1 + pp.error_at(0.1), 1 + pp.error_at(0.9)))
    assert latency_spread("apple-soc", "llamacpp", "e2e") is None  # no llama-bench phase describes it
    planned, notes = tightened(parse_slos("ttft_p90=2s"), [("apple-soc", "llamacpp")], 0.9)
    assert planned[0].threshold_s < 2.0 and "apple-soc pp (llama-bench) residuals" in notes[0]


def test_plan_at_a_confidence_reports_each_slos_margin_and_probability(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "inferplan.cli", "plan", "llama-3.1-8b", "--devices", "h100-sxm",
                        "--workload", "chat", "--rate", "4", "--duration", "120", "--confidence", "0.9", "--json",
                        "--out", str(tmp_path / "runs"), "--registry", str(tmp_path / "r.sqlite")],
                       capture_output=True, text=True, timeout=600, check=False)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["confidence"] == 0.9 and len(doc["planned_for"]) == 2
    margins = {m["slo"]: m for m in doc["slo_margins"]}
    assert set(margins) == {"ttft_p90<=2000ms", "tpot_p90<=100ms"}
    for m in margins.values():
        assert 0.0 <= m["probability"] <= 1.0 and m["margin_pct"] == pytest.approx(
            100 * (1 - m["predicted_s"] / m["threshold_s"]))
    bad = subprocess.run([sys.executable, "-m", "inferplan.cli", "plan", "--confidence", "1.5",
                          "--out", str(tmp_path / "runs")], capture_output=True, text=True, timeout=600, check=False)
    assert bad.returncode == 2 and "--confidence must be" in bad.stderr


def test_fit_and_simulate_carry_the_ranges_of_their_device_kind() -> None:
    from inferplan.api import SimulationConfig, build_deployment, fit, simulate_config

    gpu = fit(build_deployment("llama-3.1-8b", "h100-sxm"), context=4096)
    lo, hi = gpu.ranges["ttft_s"]
    spread = spread_for("datacenter-gpu", "ttft")
    assert spread is not None and (lo, hi) == pytest.approx(spread.truth_range(gpu.ttft_s))
    assert fit(build_deployment("llama-3.2-1b", "raspberry-pi-5"), context=4096).ranges == {}  # no CPU residuals
    assert set(fit(build_deployment("llama-3.2-1b", "m3-max-128gb"), context=4096).ranges) == {  # llama.cpp's
        "ttft_s", "decode_tokens_per_s_batch1"}
    _, summary = simulate_config(SimulationConfig(model="llama-3.1-8b", device="h100-sxm", workload="chat",
                                                  rate=2, num_requests=50))
    assert summary.context is not None and set(summary.context.ranges) == {"ttft_p50", "tpot_p50", "itl_p50", "e2e_p50"}
