"""Two models on one device (``plan/shared_devices.py``): the memory split, one simulation of both judged by each
model's SLOs, and deploy files the engines' own parsers and the Kubernetes schemas accept."""

from __future__ import annotations

import shlex
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from inferplan.api import build_deployment
from inferplan.deploy.shared_files import write_shared_deploy
from inferplan.perf.memory import plan_memory
from inferplan.plan.search import PlanRequest, plan
from inferplan.plan.shared_devices import _split_memory, share_devices
from tests.deploy.engine_args import parse
from tests.deploy.test_fleet_files import K8S_VERSIONS


@pytest.fixture(scope="module")
def pair() -> list:  # type: ignore[type-arg]
    """Each model alone needs an H100 ($2.99/h) for its light traffic."""
    reqs = [PlanRequest(model="llama-3.1-8b", workload="chat:rate=3,duration=120", devices=("h100-sxm",),
                        executor="serial", slo="ttft_p90=1s,tpot_p90=50ms"),
            PlanRequest(model="llama-3.2-1b", workload="code:rate=2,duration=120", devices=("h100-sxm",),
                        executor="serial")]
    return [plan(r) for r in reqs]


def test_two_models_share_one_h100_for_half_the_price_each_within_its_slos(pair: list) -> None:  # type: ignore[type-arg]
    [s] = share_devices(pair)
    assert s.models == ("llama-3.1-8b", "llama-3.2-1b") and s.count == 1
    assert s.cost_per_hour == pytest.approx(2.99) and s.apart_cost_per_hour == pytest.approx(5.98)
    assert s.saving_pct == pytest.approx(50.0)
    assert all(v.met and v.num_rejected == 0 for v in s.verdicts)
    assert s.verdicts[0].checks[0].startswith("ttft_p90<=1000ms")  # each model by its own SLOs
    assert s.verdicts[1].checks[0].startswith("ttft_p90<=2000ms")
    # both memory shares within the engine's 0.9, each still holding its weights and KV
    shares = [d.limits.gpu_memory_utilization for d in s.deployments]
    assert sum(shares) <= 0.9 + 1e-9 and all(plan_memory(d).fits for d in s.deployments)
    assert s.summary.sim is not None and s.summary.sim.cost_per_hour == pytest.approx(2.99)


def test_two_models_too_large_for_one_device_are_not_split() -> None:
    """Two 8B models in bf16 (16 GB each) leave no KV memory in an L4's 24 GB."""
    a, b = build_deployment("llama-3.1-8b", "l4", weights="bf16"), build_deployment("qwen3-8b", "l4", weights="bf16")
    wl = PlanRequest(model="llama-3.1-8b", workload="chat:rate=1,duration=60").build_workload()
    assert _split_memory(a, b, (wl, wl)) is None


def test_shared_deploy_files_parse_and_validate(pair: list, tmp_path: Path) -> None:  # type: ignore[type-arg]
    [s] = share_devices(pair)
    launch, k8s = write_shared_deploy(s, tmp_path)
    runs = [line for line in launch.read_text().splitlines() if line.startswith("CUDA_VISIBLE_DEVICES=0 vllm serve")]
    assert len(runs) == 2
    for line, dep, port in zip(runs, s.deployments, (8000, 8001), strict=True):
        argv = shlex.split(line.split(" &  #")[0])[3:]
        ns = parse("vllm", argv)
        assert float(ns.gpu_memory_utilization) == dep.limits.gpu_memory_utilization and int(ns.port) == port
    docs = list(yaml.safe_load_all(k8s.read_text()))
    assert [d["kind"] for d in docs] == ["Deployment", "Service", "Service"]
    for doc in docs:
        for version in K8S_VERSIONS:
            kubernetes_validate.validate(doc, version, strict=True)
    [container] = docs[0]["spec"]["template"]["spec"]["containers"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1  # one GPU, both servers in one container
    script = container["args"][0]
    for server in script.split(" & ")[:2]:
        parse("vllm", shlex.split(server)[2:])
