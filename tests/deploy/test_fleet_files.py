"""deploy/ files of a plan: launch.sh runs under bash, kubernetes.yaml validates against the API schemas."""

from __future__ import annotations

import dataclasses
import re
import shlex
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import numpy as np
import pytest
import yaml

from inferplan.api import EngineLimits, build_deployment
from inferplan.deploy.fleet_files import write_deploy
from inferplan.deploy.kubernetes import dns_label, gpu_node
from inferplan.perf.deployment import Deployment
from inferplan.plan.analytic import estimate
from inferplan.plan.fleet import Fleet
from inferplan.plan.pools import Evaluated, ReplicaType
from inferplan.plan.search import PlanRequest, PlanResult, make_buckets
from inferplan.plan.space import Candidate
from inferplan.sim.slo import parse_slos
from inferplan.workload.presets import make_workload
from tests.deploy.engine_args import parse
from tests.sim.summaries import latency, sample_summary

SLOS = parse_slos("ttft_p90=2s,tpot_p90=100ms")
K8S_VERSIONS = ("1.29.0", "1.33.0")  # schemas bundled by kubernetes-validate; both must accept every manifest
RFC1123 = re.compile(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?")
CTX = 6000


def _evaluated(dep: Deployment) -> Evaluated:
    lim = dep.limits
    cand = Candidate(device=dep.device.name, tp=dep.tp, weights=dep.weights.name, kv=dep.kv.name,
                     max_num_seqs=lim.max_num_seqs, max_num_batched_tokens=lim.max_num_batched_tokens)
    return Evaluated(cand, estimate(dep, 1000, 200, SLOS), capacity=(1.0, 1.0))


def _plan(model: str, types: list[ReplicaType], counts: list[int]) -> PlanResult:
    """A PlanResult as the planner returns it, without the search: the fleet is given."""
    wl = make_workload("chat", rate=1, duration_s=20, seed=0)
    buckets, _ = make_buckets(wl, 2)
    shares = np.full((len(buckets), len(types)), 1.0 / len(types))
    fleet = Fleet(tuple(counts), shares, sum(n * t.price_per_hour for n, t in zip(counts, types, strict=True)))
    summary = sample_summary(ttft_s=latency(0.4), tpot_s=latency(0.03))
    return PlanResult(request=PlanRequest(model=model, executor="serial"), workload=wl, slos=SLOS, buckets=buckets,
                      num_candidates=len(types), screen_s=0.0, screened=[], survivors=[t.decode for t in types],
                      fleet=fleet, types=types, verified=True, summary=summary, router="least-outstanding",
                      context_tokens=CTX)


def _agg(dep: Deployment) -> ReplicaType:
    return ReplicaType(_evaluated(dep), dep)


def _files(tmp: Path, r: PlanResult) -> tuple[str, list[dict[str, Any]]]:
    write_deploy(r, tmp)
    return (tmp / "launch.sh").read_text(), list(yaml.safe_load_all((tmp / "kubernetes.yaml").read_text()))


def _run_lines(launch: str) -> list[list[str]]:
    """The commands of launch.sh's `run N ...` lines, without `run N`."""
    return [shlex.split(line)[3:] for line in launch.splitlines() if line.startswith("run ")]


def _check_launch(path: Path, launch: str) -> list[list[str]]:
    lines = launch.splitlines()
    assert lines[0] == "#!/usr/bin/env bash" and "set -euo pipefail" in lines
    subprocess.run(["bash", "-n", str(path)], check=True, capture_output=True, timeout=30)
    cmds = _run_lines(launch)
    ports = [c[c.index("--port") + 1] for c in cmds]
    assert len(ports) == len(set(ports))
    for cmd in cmds:
        if cmd[:2] == ["vllm", "serve"]:
            ns = parse("vllm", cmd[2:])
            assert ns.max_model_len == str(CTX) and ns.host == "127.0.0.1"
        elif cmd[:3] == ["python", "-m", "sglang_router.launch_router"]:
            parse("sglang-router", cmd[3:])
        elif cmd[:3] == ["python", "-m", "sglang.launch_server"]:
            ns = parse("sglang", cmd[3:])
            assert ns.context_length == CTX and ns.host == "127.0.0.1"
        else:
            assert cmd[0] == "llama-server", cmd
    for line in lines:
        if line.startswith("# python -m sglang.launch_server"):
            ns = parse("sglang", shlex.split(line[2:])[3:])
            assert ns.context_length == CTX
        elif line.startswith("# vllm serve"):
            ns = parse("vllm", shlex.split(line[2:])[2:])
            assert ns.max_model_len == str(CTX)
    return cmds


def _check_manifests(docs: list[dict[str, Any]]) -> None:
    for doc in docs:
        for version in K8S_VERSIONS:
            kubernetes_validate.validate(doc, version, strict=True)
        meta = doc["metadata"]
        assert RFC1123.fullmatch(meta["name"]), meta["name"]
        for value in meta.get("labels", {}).values():
            assert RFC1123.fullmatch(value) and len(value) <= 63, value
        if doc["kind"] == "Deployment" and doc["metadata"]["labels"]["app.kubernetes.io/component"] == "worker":
            _check_worker(doc)


def _check_worker(doc: dict[str, Any]) -> None:
    pod = doc["spec"]["template"]["spec"]
    c = pod["containers"][0]
    if c["name"] == "sglang":
        assert c["image"] == "lmsysorg/sglang:v0.5.3" and c["command"] == ["python3", "-m", "sglang.launch_server"]
        ns = parse("sglang", c["args"])
        assert ns.host == "0.0.0.0" and ns.port == 8000 and ns.context_length == CTX
    else:
        assert c["image"] == "vllm/vllm-openai:v0.11.0" and c["command"] == ["vllm", "serve"]
        ns = parse("vllm", c["args"])
        assert ns.host == "0.0.0.0" and ns.port == 8000 and ns.max_model_len == str(CTX)
    token = next(e for e in c["env"] if e["name"] == "HF_TOKEN")["valueFrom"]["secretKeyRef"]
    assert token == {"name": "hf-token", "key": "token", "optional": True}
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert c[probe]["httpGet"]["path"] == "/health"
    req, lim = c["resources"]["requests"], c["resources"]["limits"]
    gpu = next(k for k in req if k.endswith("/gpu"))
    assert req[gpu] == lim[gpu] >= 1 and req["memory"] and lim["cpu"]
    assert int(lim["memory"].rstrip("Gi")) > int(req["memory"].rstrip("Gi"))
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["shm"]["emptyDir"]["medium"] == "Memory" and "model-cache" in volumes


def test_mixed_fleet_of_formats_and_devices(tmp_path: Path) -> None:
    """fp8 on H100 (2 replicas), int8 W8A8 on A100, AWQ on L4, and a gated Llama: checkpoints, flags,
    GFD node selectors, distinct ports, a router, and every manifest valid."""
    h100 = build_deployment("llama-3.1-8b", "h100-sxm", weights="fp8")
    a100 = build_deployment("llama-3.1-8b", "a100-80gb", weights="int8")
    l4 = build_deployment("llama-3.1-8b", "l4", weights="int4-awq", limits=EngineLimits(max_num_seqs=64))
    r = _plan("llama-3.1-8b", [_agg(h100), _agg(a100), _agg(l4)], [2, 1, 1])
    launch, docs = _files(tmp_path, r)
    cmds = _check_launch(tmp_path / "launch.sh", launch)
    vllm = [c for c in cmds if c[:2] == ["vllm", "serve"]]
    assert [c[2] for c in vllm] == ["RedHatAI/Meta-Llama-3.1-8B-Instruct-FP8"] * 2 + [
        "RedHatAI/Meta-Llama-3.1-8B-Instruct-quantized.w8a8", "hugging-quants/Meta-Llama-3.1-8B-Instruct-AWQ-INT4"]
    assert [c[c.index("--port") + 1] for c in vllm] == ["8000", "8001", "8002", "8003"]
    assert not any("--quantization" in c for c in vllm)
    router = next(c for c in cmds if "sglang_router.launch_router" in c)
    assert router[router.index("--policy") + 1] == "power_of_two"
    _check_manifests(docs)
    workers = [d for d in docs
               if d["kind"] == "Deployment" and d["metadata"]["labels"]["app.kubernetes.io/component"] == "worker"]
    selectors = [d["spec"]["template"]["spec"]["nodeSelector"]["nvidia.com/gpu.product"] for d in workers]
    assert selectors == ["NVIDIA-H100-80GB-HBM3", "NVIDIA-A100-SXM4-80GB", "NVIDIA-L4"]
    assert [d["spec"]["replicas"] for d in workers] == [2, 1, 1]
    kinds = [d["kind"] for d in docs]
    assert kinds.count("Deployment") == 4 and {"ServiceAccount", "Role", "RoleBinding"} <= set(kinds)
    rdep = next(d for d in docs if d["kind"] == "Deployment" and d not in workers)
    args = rdep["spec"]["template"]["spec"]["containers"][0]["args"]
    ns = parse("sglang-router", args)
    assert ns.policy == "power_of_two" and ns.service_discovery and "inferplan.io/role=aggregated" in ns.selector


def test_moe_with_dp_attention_and_a_placeholder_checkpoint(tmp_path: Path) -> None:
    """An MoE with DP attention + EP on H100s, int8 without a released W8A8 repo: the placeholder is
    marked in launch.sh and in the manifest, and a single replica needs no router."""
    dep = build_deployment("qwen3-30b-a3b", "h100-sxm", weights="int8", tp=4, dp_attention=True)
    r = _plan("qwen3-30b-a3b", [_agg(dep)], [1])
    launch, docs = _files(tmp_path, r)
    cmds = _check_launch(tmp_path / "launch.sh", launch)
    assert cmds[0][2] == "/models/PLACEHOLDER-qwen3-30b-a3b-instruct-int8" and "llm-compressor" in launch
    assert "--data-parallel-size" in cmds[0] and "--enable-expert-parallel" in cmds[0]
    _check_manifests(docs)
    assert [d["kind"] for d in docs] == ["Deployment", "Service"]
    notes = docs[0]["metadata"]["annotations"]
    assert "llm-compressor" in notes["inferplan.io/checkpoint-placeholder"]


def _servers(cmds: list[list[str]], mode: str) -> list[Any]:
    return [parse("sglang", c[3:]) for c in cmds
            if c[:3] == ["python", "-m", "sglang.launch_server"] and parse("sglang", c[3:]).disaggregation_mode == mode]


def test_disaggregated_pools_launch_as_sglang_behind_a_pd_router(tmp_path: Path) -> None:
    """A P/D unit (H100 prefill -> MI300X decode, two units): SGLang prefill and decode servers, and
    sglang-router in P/D mode whose --prefill URL/bootstrap pairs and --decode URLs are exactly those
    servers; in Kubernetes the router's selectors pick exactly the unit's pods, and the prefill pods
    carry the bootstrap-port annotation the router reads. The MI300X has no known GFD product label."""
    pre = build_deployment("qwen3-8b", "h100-sxm", weights="fp8")
    dec = build_deployment("qwen3-8b", "mi300x", weights="bf16")
    unit = ReplicaType(_evaluated(dec), dec, (1, 2), _evaluated(pre), pre)
    r = _plan("qwen3-8b", [unit], [2])
    launch, docs = _files(tmp_path, r)
    cmds = _check_launch(tmp_path / "launch.sh", launch)
    prefill, decode = _servers(cmds, "prefill"), _servers(cmds, "decode")
    assert len(prefill) == 2 and len(decode) == 4 and len(cmds) == 7
    assert [ns.model_path for ns in prefill + decode] == ["Qwen/Qwen3-8B-FP8"] * 2 + ["Qwen/Qwen3-8B"] * 4
    assert {ns.disaggregation_transfer_backend for ns in prefill + decode} == {"nixl"}
    router = parse("sglang-router", next(c for c in cmds if "sglang_router.launch_router" in c)[3:])
    assert router.pd_disaggregation and router.port == 30000 and router.decode_policy == "power_of_two"
    assert router.prefill == [[f"http://127.0.0.1:{ns.port}", str(ns.disaggregation_bootstrap_port)] for ns in prefill]
    assert len({ns.disaggregation_bootstrap_port for ns in prefill}) == 2  # one host: distinct bootstrap ports
    assert router.decode == [[f"http://127.0.0.1:{ns.port}"] for ns in decode]
    assert "inferplan does not generate it" in launch and "vLLM 0.11.0 equivalent" in launch
    _check_manifests(docs)
    workers = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"
               and d["metadata"]["labels"]["app.kubernetes.io/component"] == "worker"}
    assert list(workers) == ["qwen3-8b-h100-sxm-prefill", "qwen3-8b-mi300x-decode"]
    assert [d["spec"]["replicas"] for d in workers.values()] == [2, 4]
    rdep = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"].endswith("router"))
    ns = parse("sglang-router", rdep["spec"]["template"]["spec"]["containers"][0]["args"])
    assert ns.pd_disaggregation and ns.service_discovery
    for role, selector in (("prefill", ns.prefill_selector), ("decode", ns.decode_selector)):
        wanted = dict(item.split("=", 1) for item in selector)
        picked = [n for n, d in workers.items()
                  if wanted.items() <= d["spec"]["template"]["metadata"]["labels"].items()]
        assert picked == [n for n in workers if n.endswith(role)], (role, wanted)
    template = workers["qwen3-8b-h100-sxm-prefill"]["spec"]["template"]
    container = template["spec"]["containers"][0]
    boot = parse("sglang", container["args"]).disaggregation_bootstrap_port
    assert template["metadata"]["annotations"]["sglang.ai/bootstrap-port"] == str(boot)
    assert {"containerPort": boot, "name": "bootstrap"} in container["ports"]
    amd = workers["qwen3-8b-mi300x-decode"]
    pod = amd["spec"]["template"]["spec"]
    assert "nodeSelector" not in pod and "inferplan.io/node-selector" in amd["metadata"]["annotations"]
    assert pod["containers"][0]["resources"]["limits"]["amd.com/gpu"] == 1
    assert "ROCm" in amd["metadata"]["annotations"]["inferplan.io/image"]
    assert "inferplan.io/image" not in workers["qwen3-8b-h100-sxm-prefill"]["metadata"]["annotations"]


def test_a_pd_unit_sglang_cannot_serve_keeps_vllm_and_says_a_proxy_is_needed(tmp_path: Path) -> None:
    """A format only vLLM serves: vLLM servers with the NIXL connector, and the note that a P/D proxy
    is the user's to bring (no router is written that could not pair them)."""
    base = build_deployment("qwen3-8b", "h100-sxm", weights="fp8")
    dep = dataclasses.replace(base, weights=base.weights.model_copy(update={"engines": ("vllm",)}))
    unit = ReplicaType(_evaluated(dep), dep, (1, 1), _evaluated(dep), dep)
    r = _plan("qwen3-8b", [unit], [1])
    launch, docs = _files(tmp_path, r)
    cmds = _check_launch(tmp_path / "launch.sh", launch)
    assert len(cmds) == 2 and all(c[:2] == ["vllm", "serve"] and "--kv-transfer-config" in c for c in cmds)
    assert "inferplan does not generate it" in launch and "sglang_router" not in launch
    _check_manifests(docs)
    assert [d["kind"] for d in docs] == ["Deployment", "Service"] * 2
    env = docs[0]["spec"]["template"]["spec"]["containers"][0]["env"]
    assert any(e["name"] == "VLLM_NIXL_SIDE_CHANNEL_HOST" for e in env)


def test_edge_pool_gets_llama_server_and_no_manifest(tmp_path: Path) -> None:
    dep = build_deployment("llama-3.2-3b", "m3-max-128gb", weights="gguf-q4_k_m")
    r = _plan("llama-3.2-3b", [_agg(dep)], [2])
    launch, docs = _files(tmp_path, r)
    cmds = _check_launch(tmp_path / "launch.sh", launch)
    assert [c[:3] for c in cmds[:2]] == [["llama-server", "-hf", "bartowski/Llama-3.2-3B-Instruct-GGUF:Q4_K_M"]] * 2
    assert docs == []


@pytest.mark.parametrize(("raw", "expected"), [
    ("My_Model-V2-l4", "my-model-v2-l4"),
    ("llama-3.1-8b-h100-sxm", "llama-3-1-8b-h100-sxm"),
    ("8b--model.", "m-8b-model"),
])
def test_names_become_rfc1123_labels(raw: str, expected: str) -> None:
    assert dns_label(raw) == expected


def test_long_names_stay_unique_and_short() -> None:
    a, b = dns_label("x" * 80 + "-prefill"), dns_label("x" * 80 + "-decode")
    assert a != b and len(a) <= 63 and RFC1123.fullmatch(a) and RFC1123.fullmatch(b)


def test_a_model_name_kubernetes_refuses_is_made_valid(tmp_path: Path) -> None:
    base = build_deployment("llama-3.1-8b", "l4")
    dep = dataclasses.replace(base, model=dataclasses.replace(base.model, name="My_Model-V2"))
    r = _plan("My_Model-V2", [_agg(dep)], [1])
    _, docs = _files(tmp_path, r)
    _check_manifests(docs)
    assert docs[0]["metadata"]["name"] == "my-model-v2-l4"


def test_the_validator_refuses_a_broken_manifest(tmp_path: Path) -> None:
    """The schema check can fail: a Deployment without its selector is refused."""
    r = _plan("llama-3.1-8b", [_agg(build_deployment("llama-3.1-8b", "l4"))], [1])
    _, docs = _files(tmp_path, r)
    del docs[0]["spec"]["selector"]
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(docs[0], K8S_VERSIONS[-1], strict=True)


def test_every_gpu_device_in_the_catalog_has_node_facts() -> None:
    from inferplan.specs.catalog import device_catalog

    for name, dev in device_catalog().items():
        if dev.kind in ("datacenter-gpu", "workstation-gpu"):
            node = gpu_node(name)
            assert node.source and (node.product or node.note), name


def _stub_bin(tmp: Path, gpus: int) -> Path:
    """Stand-ins for the engines and nvidia-smi: each logs the GPUs it was given and its arguments."""
    bin_ = tmp / "bin"
    bin_.mkdir()
    log = tmp / "started.log"
    for name in ("vllm", "python", "llama-server"):
        (bin_ / name).write_text(f'#!/bin/sh\necho "${{CUDA_VISIBLE_DEVICES-unset}} {name} $*" '
                                 f'>> {shlex.quote(str(log))}\n')
    (bin_ / "nvidia-smi").write_text("#!/bin/sh\n" + "".join(f'echo "GPU {i}: stub"\n' for i in range(gpus)))
    for f in bin_.iterdir():
        f.chmod(0o755)
    return bin_


def _launch(tmp: Path, bin_: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    env = {"PATH": f"{bin_}:/usr/bin:/bin", "HOME": str(tmp)}
    log = bin_.parent / "started.log"
    log.unlink(missing_ok=True)
    run = subprocess.run(["bash", str(tmp / "launch.sh"), *args], capture_output=True, text=True, env=env, timeout=60)
    return run, sorted(log.read_text().splitlines()) if log.exists() else []


def test_launch_sh_gives_each_replica_its_own_gpus_or_starts_one(tmp_path: Path) -> None:
    """Run launch.sh with stand-in engines: all replicas on one host get disjoint GPUs (a TP2 replica two),
    the router none; too few GPUs stops before starting anything; `launch.sh N` starts replica N alone."""
    tp2 = build_deployment("llama-3.1-8b", "h100-sxm", weights="fp8", tp=2)
    a100 = build_deployment("llama-3.1-8b", "a100-80gb", weights="bf16")
    r = _plan("llama-3.1-8b", [_agg(tp2), _agg(a100)], [2, 1])
    write_deploy(r, tmp_path)
    (tmp_path / "a").mkdir()
    run, started = _launch(tmp_path, _stub_bin(tmp_path / "a", gpus=8))
    assert run.returncode == 0, run.stderr
    gpus = {line.split()[0]: line for line in started}
    assert sorted(gpus) == ["0,1", "2,3", "4", "unset"], started
    assert "sglang_router.launch_router" in gpus["unset"] and "--tensor-parallel-size 2" in gpus["0,1"]

    (tmp_path / "b").mkdir()
    run, started = _launch(tmp_path, _stub_bin(tmp_path / "b", gpus=4))
    assert run.returncode == 1 and started == []
    assert "this host has 4 GPUs and the fleet needs 5" in run.stderr

    run, started = _launch(tmp_path, tmp_path / "b" / "bin", "3")
    assert run.returncode == 0 and len(started) == 1 and started[0].startswith("unset vllm serve")
    assert "--port 8002" in started[0]
