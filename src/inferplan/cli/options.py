"""Options that several verbs share, each written once: the same flag, type and help everywhere."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

Json = Annotated[bool, typer.Option("--json", help="print machine-readable JSON on stdout (progress stays on stderr)")]
RegistryPath = Annotated[Path | None, typer.Option(
    "--registry", help="run registry SQLite file (default: INFERPLAN_REGISTRY, else the user data folder)")]
OutDir = Annotated[Path, typer.Option("--out", help="folder for run outputs (checked before the work starts)")]
Workload = Annotated[str, typer.Option(
    help="preset (chat, code, summarize, batch, diurnal-chat, bursty-chat; sessions: multi-turn, agentic) or a "
         "trace file (Azure/BurstGPT CSV, Mooncake JSONL, generic CSV/JSONL)")]
Workloads = Annotated[list[str] | None, typer.Option(
    "--workload", help="preset (chat, code, summarize, batch, diurnal-chat, bursty-chat; sessions: multi-turn, "
    "agentic; clients: multi-client), a trace file (Azure/BurstGPT CSV, Mooncake JSONL, generic CSV/JSONL) or a "
    "client spec (clients.yaml); repeat it to mix classes, each with its own options: --workload chat:rate=10 "
    "--workload batch:count=5000,deadline=6h (options: rate, count, duration, deadline, priority, name; a preset's "
    "arrivals, cv, period, input, output; a request with a deadline is judged by it, not the SLOs)")]
Priority = Annotated[bool | None, typer.Option(
    "--priority/--fcfs", help="schedule by request priority (lower first, vLLM's rule), or first come first served "
    "(default: priority when the workload's classes differ in priority, e.g. chat beside batch)")]
OfflineBudget = Annotated[float | None, typer.Option(
    help="HyGen's rule: while online requests are on a replica, offline ones get only the prefill that keeps a "
         "step within this many seconds (e.g. 0.03; simulation only, no engine runs it)")]
SessionTurns = Annotated[int | None, typer.Option(help="session presets: turns per session (default: the preset's "
                                                       "distribution)")]
ThinkTime = Annotated[float | None, typer.Option(help="session presets: median seconds between a session's turns")]
Rate = Annotated[float | None, typer.Option(help="requests per second (presets), or rescale a trace to it")]
RateScale = Annotated[float | None, typer.Option(help="multiply the arrival rate (e.g. 3 = 3x faster)")]
Duration = Annotated[float | None, typer.Option(help="seconds of arrivals (presets: default 600; a trace: its "
                                                     "first N seconds)")]
NumRequests = Annotated[int | None, typer.Option(help="number of requests (the first N of a trace)")]
Seed = Annotated[int, typer.Option(help="random seed: the same seed gives the same result")]
SkipBadRows = Annotated[bool, typer.Option("--skip-bad-rows", help="skip malformed trace rows, counted")]
TraceFormat = Annotated[str | None, typer.Option(help="azure, burstgpt, mooncake, generic (default: detect)")]
Model = Annotated[str, typer.Argument(help="catalog name (see `inferplan models`) or path to a config.json")]
Weights = Annotated[str | None, typer.Option(help="weight format (see `inferplan formats`; default: the "
                                                  "checkpoint's own, else bf16)")]
KvFormat = Annotated[str, typer.Option("--kv", help="KV-cache format (see `inferplan formats`)")]
Tp = Annotated[int, typer.Option(help="tensor-parallel degree per replica")]
Pp = Annotated[int, typer.Option(help="pipeline-parallel degree per replica")]
Ep = Annotated[bool, typer.Option("--ep", help="MoE: split whole experts over the --tp devices (expert parallelism)")]
DpAttention = Annotated[bool, typer.Option(
    "--dp-attention", help="MoE: attention data-parallel over the --tp devices, experts expert-parallel")]
MaxNumSeqs = Annotated[int | None, typer.Option(help="engine: max running sequences (default: the engine's)")]
MaxBatchedTokens = Annotated[int | None, typer.Option(help="engine: token budget per step (default: the engine's)")]
GpuMemoryUtilization = Annotated[float | None, typer.Option(
    help="engine: share of device memory it may use (TensorRT-LLM: of the memory left free; default: the engine's)")]
Engine = Annotated[str | None, typer.Option(
    help="serving engine: vllm, sglang, trtllm, llamacpp (see `inferplan engines`; default: vllm on GPUs, "
         "llamacpp elsewhere)")]
CpuKvCache = Annotated[float, typer.Option(help="GiB of host memory per replica for prefix blocks the device "
                                                "evicts (with --prefix-caching)")]
SwapSpace = Annotated[float, typer.Option(help="GiB of host memory per replica that preemption swaps KV into instead "
                                               "of recomputing it later (vLLM V0's --preemption-mode swap, "
                                               "FastSwitch); 0: recompute")]
KvBudget = Annotated[str | None, typer.Option(help="KV eviction: METHOD:TOKENS kept per sequence in every layer "
                                                  "(keydiff, streamingllm; e.g. keydiff:8192)")]
ProfileFile = Annotated[Path | None, typer.Option(help="device profile YAML from `inferplan profile` or `calibrate`")]
Slo = Annotated[str | None, typer.Option(help="objectives, e.g. ttft_p90=1s,tpot_p90=50ms (metrics: ttft, tpot, itl, "
                                              "e2e; any percentile pNN)")]
Spec = Annotated[str | None, typer.Option(
    "--spec", help="speculative decoding: eagle3, eagle, mtp, ngram or draft (see `inferplan engines`; default off)")]
SpecTokens = Annotated[int | None, typer.Option(help="speculative: tokens drafted per step (default: the method's)")]
SpecAcceptance = Annotated[str | None, typer.Option(
    help="speculative: per-token acceptance rate in [0, 1], or a file of measured per-request rates "
         "(default: the method's published figure)")]
SpecDraft = Annotated[str | None, typer.Option(help="speculative: the draft model of --spec draft (a catalog name "
                                                    "or config.json)")]

PowerCap = Annotated[float | None, typer.Option(
    help="watts: a power limit per device (nvidia-smi -pl); compute runs at a lower clock, memory does not "
         "(default: none)")]
WiredLimit = Annotated[float | None, typer.Option(
    help="GiB: a Mac's GPU wired-memory limit as set with sudo sysctl iogpu.wired_limit_mb=N (GiB x 1024); "
         "default macOS's own, about 2/3 of memory up to 36 GB and 3/4 above")]
AutoscaleTarget = Annotated[float | None, typer.Option(
    help="simulate Kubernetes' HPA over the --replicas (its maximum): this many of --autoscale-metric per replica "
         "(e.g. 32; default off)")]
AutoscaleMetric = Annotated[str, typer.Option(help="the HPA's metric: concurrency (running + waiting requests), "
                                                   "queue (waiting) or kv (KV-cache use, 0-1)")]
MinReplicas = Annotated[int, typer.Option(help="the HPA's minimum replicas (0: scale to zero, as KEDA does)")]
ColdStartSpread = Annotated[float, typer.Option(help="with --autoscale-target: how much cold starts vary, the sigma "
                                                     "of a lognormal around the median (0: each start the median)")]
ImagePull = Annotated[bool, typer.Option("--image-pull/--image-cached", help="with --autoscale-target: whether a "
                                         "started replica pulls the engine's image first (a node without it)")]
