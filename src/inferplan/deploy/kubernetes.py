"""Kubernetes manifests for a planned fleet: a Deployment and Service per pool, and a router.

Names are RFC 1123 DNS labels (Service names RFC 1035: they also start with a letter);
nodes are chosen by the ``nvidia.com/gpu.product`` label of NVIDIA GPU feature discovery
(``gpu_products.yaml``); the model downloads with an optional ``hf-token`` Secret. The tests
validate every manifest against the Kubernetes OpenAPI schemas (kubernetes-validate).
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

import yaml

from inferplan.deploy.checkpoints import Checkpoint
from inferplan.deploy.commands import (
    BOOTSTRAP_PORT,
    DEFAULT_PORT,
    SGLANG_IMAGE,
    SGLANG_ROUTER_VERSION,
    TRTLLM_IMAGE,
    VLLM_IMAGE,
    sglang_command,
    trtllm_command,
    vllm_command,
)
from inferplan.perf.deployment import Deployment
from inferplan.perf.memory import weights_bytes

GIB = 1024**3
HF_SECRET = "hf-token"  # kubectl create secret generic hf-token --from-literal=token=hf_...
HF_SECRET_KEY = "token"
CACHE_PATH = "/root/.cache/huggingface"  # the image's HF_HOME default
# The router runs from a plain Python image and installs the pinned sglang-router wheel at start
# (PyPI must be reachable from the pod; see docs/deploy.md for a prebuilt image).
ROUTER_IMAGE = "python:3.11.11-slim"
PART_OF = "app.kubernetes.io/part-of"
COMPONENT = "app.kubernetes.io/component"
ROLE = "inferplan.io/role"
UNIT = "inferplan.io/unit"  # the P/D unit a prefill or decode pool belongs to: its router selects by it
BOOTSTRAP_ANNOTATION = "sglang.ai/bootstrap-port"  # read by sglang-router's service discovery (router_args.py)
_INVALID = re.compile(r"[^a-z0-9-]+")


def dns_label(name: str, limit: int = 63) -> str:
    """An RFC 1123 label (lowercase alphanumerics and '-', at most 63) that starts with a letter,
    so it is also a valid Service name; a shortened name keeps a hash of the original to stay unique."""
    out = _INVALID.sub("-", name.lower()).strip("-")
    out = re.sub("-{2,}", "-", out) or "x"
    if not out[0].isalpha():
        out = "m-" + out
    if len(out) > limit:
        digest = hashlib.sha256(name.encode()).hexdigest()[:8]
        out = out[: limit - 9].rstrip("-") + "-" + digest
    return out


@dataclass(frozen=True, slots=True, kw_only=True)
class GpuNode:
    """How a device shows up in a cluster: its GFD product label (None if unknown) and resource name."""

    product: str | None
    resource: str
    source: str
    note: str = ""


@cache
def _gpu_products() -> dict[str, Any]:
    data = yaml.safe_load((resources.files("inferplan.specs") / "catalog" / "gpu_products.yaml").read_text())
    assert isinstance(data, dict)
    return data


def gpu_node(device: str) -> GpuNode:
    """The node facts of a catalog device; a device not in gpu_products.yaml gets no product label."""
    item = _gpu_products().get(device)
    if not isinstance(item, dict):
        return GpuNode(product=None, resource="nvidia.com/gpu", source="",
                       note=f"no GPU feature discovery product label is known for {device}")
    return GpuNode(product=item.get("product"), resource=str(item["resource"]), source=str(item.get("source", "")),
                   note=str(item.get("note", "")))


@dataclass(frozen=True, slots=True, kw_only=True)
class Pool:
    """One Deployment: ``replicas`` copies of ``dep``, serving ``checkpoint``."""

    name: str  # an RFC 1123 label (dns_label)
    dep: Deployment
    replicas: int
    role: str  # aggregated | prefill | decode
    checkpoint: Checkpoint
    context_tokens: int
    annotations: dict[str, str] = field(default_factory=dict)
    engine: str = "vllm"  # vllm | sglang | trtllm (the P/D pools: sglang-router pairs SGLang servers only)
    unit: str = ""  # P/D pools: the unit's name, shared by its prefill and decode pools and its router


@dataclass(frozen=True, slots=True, kw_only=True)
class PodSizing:
    """Host resources of one replica's pod, from the weights it loads."""

    cpu_request: int
    cpu_limit: int
    memory_request_gib: int
    memory_limit_gib: int
    shm_gib: int
    cache_gib: int
    startup_failure_threshold: int


def pod_sizing(dep: Deployment) -> PodSizing:
    """Sizes that let a replica load: vLLM runs a worker per GPU, each reading safetensors shards
    into host memory before copying them to its GPU; the page cache of the checkpoint and the
    Memory-backed /dev/shm count against the pod's memory limit too."""
    gpus = dep.num_devices
    weights_gib = weights_bytes(dep) * gpus / GIB  # about the checkpoint's size
    shm = 2 * gpus  # NCCL and vLLM's shared-memory broadcast between TP workers
    request = 8 + 4 * gpus
    cache_gib = math.ceil(weights_gib * 1.1 + 5)
    # startup: a download at ~100 MB/s plus loading and CUDA-graph capture (15 minutes)
    startup_s = 900 + weights_gib * GIB / 100e6
    return PodSizing(cpu_request=2 + 2 * gpus, cpu_limit=4 + 4 * gpus, memory_request_gib=request,
                     memory_limit_gib=request + math.ceil(weights_gib) + shm, shm_gib=shm, cache_gib=cache_gib,
                     startup_failure_threshold=math.ceil(startup_s / 10))


def _probe(path: str, period: int, failures: int) -> dict[str, Any]:
    return {"httpGet": {"path": path, "port": "http"}, "periodSeconds": period, "failureThreshold": failures}


def hf_token_env() -> dict[str, Any]:
    """HF_TOKEN from the optional Secret: ungated models download without it; gated ones (Llama, Gemma,
    Mistral) need it."""
    return {"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": HF_SECRET, "key": HF_SECRET_KEY,
                                                                "optional": True}}}


def pod_placement(node: GpuNode, shm_gib: int, cache_gib: int) -> dict[str, Any]:
    """A pod spec's volumes (a Memory-backed /dev/shm, the model cache) and where it may run (the GPU nodes)."""
    spec: dict[str, Any] = {
        "volumes": [{"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": f"{shm_gib}Gi"}},
                    # an emptyDir downloads the checkpoint at every start; a ReadWriteMany PVC keeps it
                    {"name": "model-cache", "emptyDir": {"sizeLimit": f"{cache_gib}Gi"}}],
        "tolerations": [{"key": node.resource, "operator": "Exists", "effect": "NoSchedule"}],
    }
    if node.product:
        spec["nodeSelector"] = {"nvidia.com/gpu.product": node.product}
    return spec


def _env(pool: Pool) -> list[dict[str, Any]]:
    env: list[dict[str, Any]] = [hf_token_env()]
    if pool.role != "aggregated" and pool.engine == "vllm":  # NIXL's side channel listens on the pod's own address
        env.append({"name": "VLLM_NIXL_SIDE_CHANNEL_HOST", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}})
    return env


def _annotations(pool: Pool, node: GpuNode) -> dict[str, str]:
    ck = pool.checkpoint
    notes = dict(pool.annotations)
    notes["inferplan.io/checkpoint"] = ck.repo
    notes["inferplan.io/checkpoint-prequantized"] = str(ck.prequantized).lower()
    if ck.source:
        notes["inferplan.io/checkpoint-source"] = ck.source
    if ck.placeholder:
        notes["inferplan.io/checkpoint-placeholder"] = ck.note
    if node.product is None:
        notes["inferplan.io/node-selector"] = (f"no nvidia.com/gpu.product value is known for {pool.dep.device.name}: "
                                               "add a nodeSelector that picks its nodes")
    if node.note:
        notes["inferplan.io/device-note"] = node.note
    if pool.dep.device.vendor != "NVIDIA":  # both engines' release images are CUDA builds
        notes["inferplan.io/image"] = (f"the image is a CUDA build: on {pool.dep.device.vendor} GPUs use the engine's "
                                       "ROCm build (rocm/vllm, or lmsysorg/sglang's -rocm tags) of the same version")
    if pool.dep.pp > 1:
        notes["inferplan.io/multi-node"] = (f"{pool.dep.pp} pipeline stages span {pool.dep.pp} nodes: run this pool "
                                            "as a LeaderWorkerSet with a Ray cluster, "
                                            "not as this single-pod Deployment")
    return notes


def _server(pool: Pool) -> dict[str, Any]:
    """The container's name, image, command, args and ports: the pool's engine's server."""
    ports: list[dict[str, Any]] = [{"containerPort": DEFAULT_PORT, "name": "http"}]
    if pool.engine == "sglang":
        mode = None if pool.role == "aggregated" else pool.role
        cmd = sglang_command(pool.dep, context_tokens=pool.context_tokens, host="0.0.0.0", port=DEFAULT_PORT,
                             checkpoint=pool.checkpoint, disaggregation=mode)
        if pool.role == "prefill":
            ports.append({"containerPort": BOOTSTRAP_PORT, "name": "bootstrap"})
        return {"name": "sglang", "image": SGLANG_IMAGE, "command": ["python3", *cmd[1:3]], "args": cmd[3:],
                "ports": ports}
    if pool.engine == "trtllm":
        cmd = trtllm_command(pool.dep, context_tokens=pool.context_tokens, host="0.0.0.0", port=DEFAULT_PORT,
                             checkpoint=pool.checkpoint)
        return {"name": "trtllm", "image": TRTLLM_IMAGE, "command": cmd[:1], "args": cmd[1:], "ports": ports}
    cmd = vllm_command(pool.dep, context_tokens=pool.context_tokens, host="0.0.0.0", port=DEFAULT_PORT,
                       checkpoint=pool.checkpoint, kv_transfer=pool.role != "aggregated")
    return {"name": "vllm", "image": VLLM_IMAGE, "command": cmd[:2], "args": cmd[2:], "ports": ports}


def pool_manifests(pool: Pool, fleet: str) -> list[dict[str, Any]]:
    """Deployment + Service for one pool; pods carry the labels the router discovers them by."""
    dep, size, node = pool.dep, pod_sizing(pool.dep), gpu_node(pool.dep.device.name)
    labels = {"app.kubernetes.io/name": pool.name, PART_OF: fleet, COMPONENT: "worker", ROLE: pool.role}
    if pool.unit:
        labels[UNIT] = pool.unit
    gpus = dep.num_devices
    resources_ = {"requests": {node.resource: gpus, "cpu": str(size.cpu_request),
                               "memory": f"{size.memory_request_gib}Gi"},
                  "limits": {node.resource: gpus, "cpu": str(size.cpu_limit), "memory": f"{size.memory_limit_gib}Gi"}}
    container = {
        **_server(pool),
        "env": _env(pool), "resources": resources_,
        "volumeMounts": [{"name": "shm", "mountPath": "/dev/shm"}, {"name": "model-cache", "mountPath": CACHE_PATH}],
        "startupProbe": _probe("/health", 10, size.startup_failure_threshold),
        "livenessProbe": _probe("/health", 10, 3),
        "readinessProbe": _probe("/health", 5, 3),
    }
    spec: dict[str, Any] = {"containers": [container], **pod_placement(node, size.shm_gib, size.cache_gib)}
    template: dict[str, Any] = {"labels": labels}
    if pool.engine == "sglang" and pool.role == "prefill":
        template["annotations"] = {BOOTSTRAP_ANNOTATION: str(BOOTSTRAP_PORT)}
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": pool.name, "labels": labels, "annotations": _annotations(pool, node)},
        "spec": {"replicas": pool.replicas, "selector": {"matchLabels": {"app.kubernetes.io/name": pool.name}},
                 "template": {"metadata": template, "spec": spec}},
    }
    service = {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": pool.name, "labels": labels},
        "spec": {"selector": {"app.kubernetes.io/name": pool.name},
                 "ports": [{"port": 80, "targetPort": "http", "name": "http"}]},
    }
    return [deployment, service]


_DISCOVERY = ["--service-discovery-port", str(DEFAULT_PORT), "--service-discovery-namespace", "$(POD_NAMESPACE)"]


def router_args(fleet: str, policy: str) -> list[str]:
    """sglang-router arguments: find the fleet's aggregated worker pods by label, route by ``policy``."""
    return ["--host", "0.0.0.0", "--port", str(DEFAULT_PORT), "--policy", policy,
            "--service-discovery", "--selector", f"{PART_OF}={fleet}", f"{ROLE}=aggregated", *_DISCOVERY]


def pd_router_args(fleet: str, unit: str, prefill_policy: str, decode_policy: str) -> list[str]:
    """sglang-router in P/D mode: the unit's prefill and decode pods by label; each prefill pod's
    bootstrap port comes from its ``sglang.ai/bootstrap-port`` annotation."""
    pods = [f"{PART_OF}={fleet}", f"{UNIT}={unit}"]
    return ["--pd-disaggregation", "--host", "0.0.0.0", "--port", str(DEFAULT_PORT),
            "--prefill-policy", prefill_policy, "--decode-policy", decode_policy, "--service-discovery",
            "--prefill-selector", *pods, f"{ROLE}=prefill", "--decode-selector", *pods, f"{ROLE}=decode", *_DISCOVERY]


def router_manifests(fleet: str, name: str, args: list[str], note: str) -> list[dict[str, Any]]:
    """An SGLang router named ``name`` in front of (part of) the fleet: RBAC to watch pods, a
    Deployment and a Service. ``args``: router_args or pd_router_args."""
    labels = {"app.kubernetes.io/name": name, PART_OF: fleet, COMPONENT: "router"}
    script = (f'pip install --no-cache-dir sglang-router=={SGLANG_ROUTER_VERSION} '
              '&& exec python -m sglang_router.launch_router "$@"')
    container = {
        "name": "router", "image": ROUTER_IMAGE, "command": ["sh", "-c", script, "router"],
        "args": args,
        "env": [{"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}}],
        "ports": [{"containerPort": DEFAULT_PORT, "name": "http"}],
        "resources": {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "4", "memory": "4Gi"}},
        "startupProbe": _probe("/health", 10, 30),
        "livenessProbe": _probe("/health", 10, 3),
        "readinessProbe": _probe("/health", 5, 3),
    }
    meta = {"name": name, "labels": labels}
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": meta,
         "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": meta,
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
         "subjects": [{"kind": "ServiceAccount", "name": name}]},
        {"apiVersion": "apps/v1", "kind": "Deployment",
         "metadata": meta | {"annotations": {"inferplan.io/router-policy": note}},
         "spec": {"replicas": 1, "selector": {"matchLabels": {"app.kubernetes.io/name": name}},
                  "template": {"metadata": {"labels": labels},
                               "spec": {"serviceAccountName": name, "containers": [container]}}}},
        {"apiVersion": "v1", "kind": "Service", "metadata": meta,
         "spec": {"selector": {"app.kubernetes.io/name": name},
                  "ports": [{"port": 80, "targetPort": "http", "name": "http"}]}},
    ]
