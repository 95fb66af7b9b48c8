"""autoscaling.yaml: a KEDA ScaledObject per pool, the HPA the plan simulated (``plan/reactive_plan.py``).

KEDA (keda.sh/v1alpha1 ScaledObject; its prometheus scaler) creates and drives the Deployment's
HorizontalPodAutoscaler: every ``pollingInterval`` it reads the query and asks for
``ceil(value / threshold)`` replicas (``metricType: AverageValue``), within ``minReplicaCount`` and
``maxReplicaCount``, with the HPA ``behavior`` given under ``advanced``. The query sums the pool's
requests in flight as the engine exports them (vLLM: ``vllm:num_requests_running`` and
``vllm:num_requests_waiting``, vllm/v1/metrics/loggers.py; SGLang: ``sglang:num_running_reqs`` and
``sglang:num_queue_reqs``, python/sglang/srt/metrics/collector.py), so the threshold is the simulated
per-replica target.
"""

from __future__ import annotations

from typing import Any

from inferplan.plan.reactive_plan import ReactivePool

PROMETHEUS = "http://prometheus-operated.monitoring.svc:9090"  # the Prometheus Operator's default service
KV_METRICS = {"vllm": "vllm:kv_cache_usage_perc", "sglang": "sglang:token_usage"}
QUEUE_METRICS = {"vllm": ("vllm:num_requests_waiting",), "sglang": ("sglang:num_queue_reqs",)}
RUNNING_METRICS = {"vllm": ("vllm:num_requests_running",), "sglang": ("sglang:num_running_reqs",)}


def prometheus_query(pool: ReactivePool, deployment: str, engine: str) -> str:
    """The pool's total of the simulated metric (KEDA divides it by the per-replica threshold)."""
    match = f'{{pod=~"{deployment}-.*"}}'
    metric = pool.policy.metric
    if metric == "kv":
        return f"sum({KV_METRICS[engine]}{match})"
    names = QUEUE_METRICS[engine] + (RUNNING_METRICS[engine] if metric == "concurrency" else ())
    return " + ".join(f"sum({name}{match})" for name in names)


def scaled_object(pool: ReactivePool, deployment: str, engine: str) -> dict[str, Any]:
    p = pool.policy
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": f"{deployment}-autoscaler", "annotations": {
            "inferplan.io/simulated-metric": p.metric, "inferplan.io/target-per-replica": f"{p.target:g}",
            "inferplan.io/cold-start-s": f"{p.cold_start_s:.0f}",
            "inferplan.io/cold-start-spread": f"{p.cold_start_spread:g}",
            "inferplan.io/metric-delay-s": f"{p.metric_delay_s:g}"}},
        "spec": {
            "scaleTargetRef": {"name": deployment},
            "pollingInterval": int(p.sync_s),
            "minReplicaCount": p.min_replicas,
            "maxReplicaCount": p.max_replicas,
            "advanced": {"horizontalPodAutoscalerConfig": {"behavior": {
                "scaleDown": {"stabilizationWindowSeconds": int(p.scale_down_window_s)},
                "scaleUp": {"stabilizationWindowSeconds": int(p.scale_up_window_s)}}}},
            "triggers": [{"type": "prometheus", "metricType": "AverageValue", "metadata": {
                "serverAddress": PROMETHEUS, "query": prometheus_query(pool, deployment, engine),
                "threshold": f"{p.target:g}"}}],
        },
    }


def autoscaling_docs(pools: tuple[ReactivePool, ...], deployments: dict[str, tuple[str, str]]) -> list[dict[str, Any]]:
    """A ScaledObject for each pool whose Deployment the manifests have (``deployments``: type label ->
    (Deployment name, engine)); llama.cpp and pools without a Deployment are left out."""
    return [scaled_object(p, *deployments[p.type_label]) for p in pools
            if p.type_label in deployments and deployments[p.type_label][1] in QUEUE_METRICS]
