"""The README's other `plan` and `simulate` examples in a pseudo-terminal, shortened to test-sized traffic."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from tests.cli.conftest import in_terminal
from tests.cli.test_terminal import assert_ok
from tests.conftest import TRACES, needs_azure_trace


def test_plan_with_autoscaling_recommends_one_provisioning(tmp_path: Path) -> None:
    s = in_terminal(tmp_path, "plan", "llama-3.1-8b", "--workload", "diurnal-chat", "--autoscale", "--window", "2m",
                    timeout=600)
    flat = " ".join(assert_ok(s.text, s.exit_code).split())
    assert "autoscaled: replicas" in flat and "recommendation: " in flat
    assert any(x in flat for x in ("recommendation: autoscale:", "recommendation: static peak",
                                   "recommendation: reactive", "recommendation: neither"))
    # the reactive HPA, simulated beside the schedule, and its KEDA manifests naming the metric and target
    assert "reactive (HPA on concurrency, target " in flat and "autoscaling.yaml" in flat
    scaled = list(yaml.safe_load_all(next(tmp_path.glob("inferplan-runs/plan-*/deploy/autoscaling.yaml")).read_text()))
    target = re.search(r"target ([0-9.]+) per replica", flat)
    assert target is not None and scaled and all(d["kind"] == "ScaledObject" for d in scaled)
    trigger = scaled[0]["spec"]["triggers"][0]
    assert trigger["metadata"]["threshold"] == target.group(1)
    assert "vllm:num_requests_running" in trigger["metadata"]["query"]
    assert "vllm:num_requests_waiting" in trigger["metadata"]["query"]
    assert scaled[0]["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]["scaleDown"] == {
        "stabilizationWindowSeconds": 300}
    # three targets tried around the static fleet's busiest-window concurrency; the kept one is the cheapest that
    # meets every SLO (else the best attainment), and it is the one the manifests carry
    doc = json.loads(next(tmp_path.glob("inferplan-runs/plan-*/plan.json")).read_text())
    tried = doc["autoscale"]["reactive"]["targets_tried"]
    assert len(tried) == 3 and tried[0]["target"] < tried[1]["target"] < tried[2]["target"]
    assert tried[2]["target"] == pytest.approx(tried[1]["target"] * 1.25, abs=0.11)
    met = [t for t in tried if t["slos_met"]]
    kept = min(met, key=lambda t: t["cost_per_day"]) if met else max(tried, key=lambda t: t["slo_attainment"])
    assert float(target.group(1)) == kept["target"] and "HPA targets tried" in flat


@needs_azure_trace
def test_plan_70b_on_the_azure_trace_and_qwen_as_json(tmp_path: Path) -> None:
    big = in_terminal(tmp_path, "plan", "llama-3.1-70b", "--workload", str(TRACES / "azure_llm_2023_conv.csv"),
                      "--rate-scale", "4", "--num-requests", "600", "--slo", "ttft_p90=2s,tpot_p90=80ms",
                      "--devices", "h100-sxm,a100-80gb,l40s,l4", "--max-quality-loss", "1", timeout=600)
    flat = " ".join(assert_ok(big.text, big.exit_code).split())
    assert "planning llama-3.1-70b" in flat and "why this fleet:" in flat and "deploy files in" in flat
    qwen = in_terminal(tmp_path, "plan", "qwen3-32b", "--workload", "chat", "--rate", "40", "--duration", "20",
                       "--slo", "ttft_p99=1.5s,tpot_p90=60ms", "--json", "--out", "plans", timeout=600)
    assert qwen.exit_code == 0, qwen.text[-2000:]
    doc = json.loads(qwen.text[qwen.text.index("{"):])
    assert doc["slo"] == "ttft_p99=1.5s,tpot_p90=60ms" and Path(doc["artifacts"]["plan"]).is_file()
    assert Path(doc["artifacts"]["plan"]).is_relative_to(tmp_path / "plans")


def test_disaggregated_simulate_example(tmp_path: Path) -> None:
    s = in_terminal(tmp_path, "simulate", "llama-3.1-8b", "--device", "h100-sxm", "--workload", "summarize", "--rate",
                    "8", "--duration", "60", "--prefill-replicas", "1", "--replicas", "1", "--slo",
                    "ttft_p90=1s,tpot_p90=15ms")
    flat = " ".join(assert_ok(s.text, s.exit_code).split())
    assert "prefill 1x" in flat and "SLO ttft_p90" in flat
