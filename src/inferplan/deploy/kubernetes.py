"""Kubernetes manifests for a planned fleet: a Deployment and a Service per replica type."""

from __future__ import annotations

from typing import Any

from inferplan.deploy.commands import vllm_command
from inferplan.perf.deployment import Deployment

VLLM_IMAGE = "vllm/vllm-openai:latest"


def manifests(name: str, dep: Deployment, replicas: int, prediction: dict[str, Any], *,
              kv_transfer: bool = False) -> list[dict[str, Any]]:
    """Deployment + Service for ``replicas`` copies of ``dep``, the prediction in annotations.

    ``kv_transfer``: a prefill or decode pool of a disaggregated fleet (vLLM's NIXL KV connector).
    """
    cmd = vllm_command(dep)
    if kv_transfer:
        cmd += ["--kv-transfer-config", '{"kv_connector":"NixlConnector","kv_role":"kv_both"}']
    labels = {"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": "inferplan-fleet"}
    notes = {f"inferplan.io/{k}": str(v) for k, v in prediction.items()}
    gpus = dep.num_devices
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels, "annotations": notes},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [{
                        "name": "vllm",
                        "image": VLLM_IMAGE,
                        "command": cmd[:2],
                        "args": cmd[2:],
                        "ports": [{"containerPort": 8000, "name": "http"}],
                        "resources": {"limits": {"nvidia.com/gpu": gpus}, "requests": {"nvidia.com/gpu": gpus}},
                        "readinessProbe": {"httpGet": {"path": "/health", "port": 8000}, "periodSeconds": 10},
                    }],
                    "nodeSelector": {"inferplan.io/device": dep.device.name},
                },
            },
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "labels": labels},
        "spec": {"selector": labels, "ports": [{"port": 80, "targetPort": 8000, "name": "http"}]},
    }
    return [deployment, service]
