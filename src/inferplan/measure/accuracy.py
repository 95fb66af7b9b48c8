"""Replay published measurements through the simulator and report the error per dataset, device, engine, phase.

Three datasets ship in ``measure/data`` (see its README for sources and setups):

* ``trtllm-v0.17-offline``: TensorRT-LLM's offline maximum throughput (trtllm-bench) on five GPUs,
  replayed under the trtllm engine with the limits trtllm-bench itself picks (``trtllm_bench_limits``).
* ``serving-online``: online serving runs at a request rate (SGLang's and vLLM's published
  benchmark pages), replayed with Poisson arrivals and ShareGPT-like lengths (``sharegpt_lengths``).
* ``vidur-allreduce``: NCCL all-reduce timings by size, when ``--measurements`` points at Vidur's profiles.
* ``vidur-gemm``: a layer's four projection GEMMs by token count and TP degree on A100, A40 and H100, from
  Vidur's compute profiles (``gemm_cases``): the shipped matmul curve checked, never fitted.
* ``llamacpp-published``: llama-bench results the project collected from llama.cpp pull requests, repository
  files and hardware write-ups (CUDA, Metal, ROCm, Vulkan, CPU; ``measure/data/README.md``), checked only.
* ``llamacpp-xiongjiedai``: llama-bench prompt (pp) and generation (tg) speed on 20 NVIDIA GPUs and four
  Apple chips, when ``--measurements`` holds that table (``llamacpp_cases``).

Rows are held out of ``--fit`` by device (``HOLDOUT_DEVICES``), so the report gives both errors.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from functools import partial
from importlib import resources
from pathlib import Path

import numpy as np

from inferplan.errors import InputError
from inferplan.measure.collectives_fit import PROFILE_DEVICES, AllReducePoint, read_allreduce_points
from inferplan.measure.gemm_cases import DATASET as GEMM_DATASET
from inferplan.measure.gemm_cases import gemm_cases, read_gemm_points
from inferplan.measure.llamacpp_cases import DATASET as LLAMACPP_DATASET
from inferplan.measure.llamacpp_cases import (
    PUBLISHED_DATASET,
    PUBLISHED_FILE,
    XIONGJIEDAI_FILE,
    BenchRow,
    published_cases,
    read_bench_rows,
    speed_cases,
)
from inferplan.perf.collectives import AllReduce, nccl_fits
from inferplan.perf.deployment import Deployment
from inferplan.perf.memory import plan_memory
from inferplan.perf.profile import DeviceProfile
from inferplan.perf.resolve import resolve_deployment
from inferplan.sim.cluster import Cluster
from inferplan.sim.loop import simulate
from inferplan.sim.summary import summarize
from inferplan.workload.request import Workload

# never fitted: the report's held-out error (a datacenter GPU, and one device per llama.cpp backend)
HOLDOUT_DEVICES = ("h200", "rtx-4090", "m3-max-64gb")
FITTED_DATASETS = ("trtllm-v0.17-offline", "vidur-allreduce", LLAMACPP_DATASET)  # online runs: only checked
COMPONENT_DATASETS = ("vidur-allreduce", GEMM_DATASET)  # parts of a step, not in the ranges predictions carry
_TRT_MODELS = {"LLaMA v3.1 8B": "llama-3.1-8b", "LLaMA v3.1 70B": "llama-3.1-70b", "LLaMA v3.1 405B": "llama-3.1-405b",
               "Mistral 7B": "mistral-7b-v0.1", "Mixtral 8x7B": "mixtral-8x7b"}
_TRT_GPUS = {"H200 141GB HBM3": "h200", "H100 80GB HBM3": "h100-sxm", "L40S": "l40s", "A100-SXM4-80GB": "a100-80gb"}
_TRT_COLUMNS = ("model", "gpu", "precision", "tp", "isl", "osl", "throughput_tokens_per_s")
_ONLINE_COLUMNS = ("engine", "gpu", "tp", "model", "weights", "request_rate", "num_prompts")
ProfileFor = Callable[[Deployment], DeviceProfile | None]


@dataclass(frozen=True, slots=True)
class Case:
    """One measured figure and its prediction."""

    dataset: str
    device: str
    engine: str
    phase: str  # throughput, ttft, itl, tpot, e2e, allreduce
    label: str
    measured: float
    predicted: float

    @property
    def error(self) -> float:
        """Signed relative error of the prediction."""
        return self.predicted / self.measured - 1.0

    @property
    def in_fit(self) -> str:
        """Whether `accuracy --fit` fitted to this figure: "yes", "held out" (a device kept out of the fit),
        or "no" (a dataset only checked, never fitted)."""
        if self.dataset not in FITTED_DATASETS:
            return "no"
        return "held out" if self.device in HOLDOUT_DEVICES else "yes"


def data_file(name: str) -> Path:
    return Path(str(resources.files("inferplan.measure") / "data" / name))


def read_rows(path: Path, columns: Iterable[str]) -> list[dict[str, str]]:
    """A measurement CSV's rows; a missing column is one clear error naming the file and the column."""
    try:
        with path.open(newline="") as f:
            reader = csv.DictReader(f)
            missing = [c for c in columns if c not in (reader.fieldnames or ())]
            if missing:
                raise InputError(f"{path}: missing column(s) {', '.join(missing)}; expected {', '.join(columns)}")
            return list(reader)
    except FileNotFoundError:
        raise InputError(f"{path}: no such measurement file") from None


# ---- offline throughput --------------------------------------------------------------------
def trtllm_bench_limits(dep: Deployment, *, isl: int, osl: int) -> dict[str, int | float | bool]:
    """The limits trtllm-bench tunes for a fixed-length dataset (tensorrt_llm/bench/build/tuning.py):
    requests the KV cache holds at 0.95 of free memory, capped at 4096, and tokens for one step of
    them, capped at 32768, each rounded as the tool rounds."""
    kv_tokens = plan_memory(dep).kv_capacity_tokens
    raw_bs = min(kv_tokens / (isl + osl), 4096) / dep.pp
    raw_tokens = min(raw_bs * (1 + isl / osl), 32768)
    bs = (max(64, _ceil(raw_bs, 32)) if raw_bs < 256 else _ceil(raw_bs, 128) if raw_bs < 1024
          else _ceil(raw_bs, 256))
    tokens = (max(2048, _ceil(raw_tokens, 256)) if raw_tokens < 4096 else _ceil(raw_tokens, 512)
              if raw_tokens < 8192 else _ceil(raw_tokens, 1024))
    return {"max_num_seqs": bs, "max_num_batched_tokens": tokens, "gpu_memory_utilization": 0.95,
            "enable_chunked_prefill": True}


def _ceil(x: float, step: int) -> int:
    return int(math.ceil(x / step) * step)


def offline_cases(path: Path, profile_for: ProfileFor | None = None, *,
                  fit_rows_only: bool = False) -> Iterator[Case]:
    """TensorRT-LLM v0.17's offline rows: output tokens/s of a fixed-length batch run to completion
    (``fit_rows_only``: the rows of devices not held out)."""
    for row in read_rows(path, _TRT_COLUMNS):
        model, device = _TRT_MODELS.get(row["model"]), _TRT_GPUS.get(row["gpu"])
        if model is None or device is None:  # no catalog model (Mixtral 8x22B) or device (GH200) for the row
            continue
        if fit_rows_only and device in HOLDOUT_DEVICES:
            continue
        fp8 = row["precision"] == "FP8"
        isl, osl, tp = int(row["isl"]), int(row["osl"]), int(row["tp"])
        try:
            dep = _deployment(model, device, "fp8" if fp8 else "fp16", "fp8" if fp8 else "fp16", tp,
                              partial(trtllm_bench_limits, isl=isl, osl=osl), profile_for)
        except InputError:  # does not fit under the engine's rules: the source ran it, so say nothing
            continue
        n = min(3000, max(200, int(2e6 / (isl + osl))))
        wl = Workload.build(np.zeros(n), np.full(n, isl), np.full(n, osl), name=f"{isl}/{osl}")
        res = simulate(wl, Cluster.replicas([dep]))
        yield Case("trtllm-v0.17-offline", device, "trtllm", "throughput", f"{model} TP{tp} {isl}/{osl}",
                   float(row["throughput_tokens_per_s"]), n * osl / res.makespan_s)


def _deployment(model: str, device: str, weights: str, kv: str, tp: int,
                limits_for: Callable[[Deployment], dict[str, int | float | bool]],
                profile_for: ProfileFor | None, engine: str = "trtllm") -> Deployment:
    probe = resolve_deployment(model, device, weights=weights, kv=kv, tp=tp, engine=engine,
                               limits={"gpu_memory_utilization": 0.95})
    profile = profile_for(probe) if profile_for else None
    return resolve_deployment(model, device, weights=weights, kv=kv, tp=tp, engine=engine,
                              limits=limits_for(probe), profile=profile)


# ---- online serving --------------------------------------------------------------------------
def sharegpt_lengths(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Prompt and output lengths like the benchmark clients' ShareGPT sample: log-normal (sigma 1.0)
    with means near those a 300-prompt sample printed (74,403 input and 61,393 output tokens:
    sgl-project/sglang issue #1268), pruned as sample_sharegpt_requests prunes (prompt and output
    at least 4, prompt at most 1,024, both at most 2,048). An approximation: the prompts themselves
    are not carried."""
    rng = np.random.default_rng(seed)
    prompts, outputs = np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    while prompts.size < n:
        p = np.round(rng.lognormal(np.log(160.0), 1.0, 4 * n)).astype(np.int64)
        o = np.round(rng.lognormal(np.log(125.0), 1.0, 4 * n)).astype(np.int64)
        keep = (p >= 4) & (o >= 4) & (p <= 1024) & (p + o <= 2048)
        prompts, outputs = np.concatenate([prompts, p[keep]]), np.concatenate([outputs, o[keep]])
    return prompts[:n], outputs[:n]


# metric column -> (phase, summary field, statistic)
_ONLINE_METRICS = {
    "median_ttft_ms": ("ttft", "ttft_s", "p50"), "mean_ttft_ms": ("ttft", "ttft_s", "mean"),
    "median_itl_ms": ("itl", "itl_s", "p50"), "median_tpot_ms": ("tpot", "tpot_s", "p50"),
    "median_e2e_ms": ("e2e", "e2e_s", "p50"),
}


def online_cases(path: Path, profile_for: ProfileFor | None = None) -> Iterator[Case]:
    """Online rows: Poisson arrivals at the published rate, each published median or mean against the
    simulated one. vLLM 0.6 runs with multi-step scheduling deliver tokens in bursts of ten, so their
    TTFT and ITL are not compared (the notes column says which rows)."""
    for row in read_rows(path, _ONLINE_COLUMNS):
        n, rate, engine = int(row["num_prompts"]), float(row["request_rate"]), row["engine"]
        dep = _deployment(row["model"], row["gpu"], row["weights"], row.get("kv") or "bf16", int(row["tp"]),
                          lambda d: {}, profile_for, engine=engine)
        if row.get("async_scheduling") == "no":  # a vLLM from before its async scheduler: host time adds up
            dep = replace(dep, profile=dep.device_profile.model_copy(update={"host_overlapped": False}))
        rng = np.random.default_rng(0)
        prompts, outputs = sharegpt_lengths(n, seed=1)
        wl = Workload.build(np.cumsum(rng.exponential(1.0 / rate, n)), prompts, outputs, name="sharegpt")
        summary = summarize(simulate(wl, Cluster.replicas([dep])))
        bursts = "multi-step" in row.get("notes", "")
        for column, (phase, field, stat) in _ONLINE_METRICS.items():
            if not row.get(column) or (bursts and phase in ("ttft", "itl")):
                continue
            predicted = getattr(getattr(summary, field), stat)
            if predicted is not None:
                yield Case("serving-online", row["gpu"], engine, phase,
                           f"{row['model']} TP{row['tp']} {rate:g} req/s {column}", float(row[column]),
                           predicted * 1e3)


# ---- collectives -------------------------------------------------------------------------------
def allreduce_cases(points: list[AllReducePoint]) -> Iterator[Case]:
    """Vidur's NCCL all-reduce timings against the shipped NCCL fit (latency + ring bytes over the bus)."""
    fits = nccl_fits()
    for p in points:
        device = PROFILE_DEVICES[p.folder][0]
        if device not in fits:
            continue
        latency, bus = fits[device].at(p.n)
        assert bus is not None
        predicted = AllReduce(p.n, latency, bus).seconds(p.size_bytes)
        yield Case("vidur-allreduce", device, "nccl", "allreduce", f"{p.folder} n={p.n} {p.size_bytes} B",
                   p.seconds, predicted)


# ---- the whole replay ------------------------------------------------------------------------
def all_cases(measurements: Path | None = None, profile_for: ProfileFor | None = None,
              progress: Callable[[str], None] | None = None) -> list[Case]:
    """Every carried measurement, replayed; ``measurements``: a folder with Vidur's profiles
    (``vidur/profiling/network``) to add the collectives, and llama-bench results to add llama.cpp."""
    say = progress or (lambda _msg: None)
    points = gemms = None
    if measurements is not None:  # read (and so check) the files before the minutes of replay
        network = measurements / "vidur" / "profiling" / "network"
        compute = measurements / "vidur" / "profiling" / "compute"
        if not network.is_dir() and not compute.is_dir() and not (measurements / XIONGJIEDAI_FILE).exists():
            raise InputError(f"{measurements}: none of vidur/profiling/network (all-reduce profiles), "
                             f"vidur/profiling/compute (GEMM profiles) or {XIONGJIEDAI_FILE} (llama-bench "
                             "results) is in it")
        points = read_allreduce_points(network) if network.is_dir() else None
        gemms = read_gemm_points(compute) if compute.is_dir() else None
    cases: list[Case] = []
    say("replaying TensorRT-LLM v0.17 offline throughput")
    cases += offline_cases(data_file("trtllm_perf_overview_v0.17_throughput.csv"), profile_for)
    say("replaying online serving runs")
    cases += online_cases(data_file("serving_online.csv"), profile_for)
    say("replaying published llama-bench results")
    cases += [Case(PUBLISHED_DATASET, c.device, f"llamacpp/{backend}", c.test[:2], c.label, c.measured, c.predicted)
              for backend, c in published_cases(data_file(PUBLISHED_FILE))]
    if points is not None:
        say("checking all-reduce timings")
        cases += allreduce_cases(points)
    if gemms is not None:
        say("checking GEMM timings")
        cases += [Case(GEMM_DATASET, device, "torch", phase, label, measured * 1e3, predicted * 1e3)
                  for device, phase, label, measured, predicted in gemm_cases(gemms)]
    if measurements is not None and (measurements / XIONGJIEDAI_FILE).exists():
        say("replaying llama-bench results")
        cases += llamacpp_cases(read_bench_rows(measurements, profile_for))
    return cases


def llamacpp_cases(rows: list[BenchRow]) -> Iterator[Case]:
    for c in speed_cases(rows):
        yield Case(LLAMACPP_DATASET, c.device, "llamacpp", c.test[:2], f"{c.label} {c.test}", c.measured, c.predicted)


@dataclass(frozen=True, slots=True)
class ErrorGroup:
    """Median and worst absolute error of one (dataset, device, engine, phase), and whether it was fitted."""

    dataset: str
    device: str
    engine: str
    phase: str
    count: int
    median_abs_pct: float
    median_signed_pct: float
    max_abs_pct: float
    in_fit: str

    def to_json(self) -> dict[str, object]:
        return {f: getattr(self, f) for f in self.__slots__}


def error_groups(cases: Iterable[Case]) -> list[ErrorGroup]:
    groups: dict[tuple[str, str, str, str], list[Case]] = {}
    for c in cases:
        groups.setdefault((c.dataset, c.device, c.engine, c.phase), []).append(c)
    out = []
    for (dataset, device, engine, phase), cs in sorted(groups.items()):
        err = np.array([c.error for c in cs]) * 100
        out.append(ErrorGroup(dataset, device, engine, phase, len(cs), round(float(np.median(np.abs(err))), 1),
                              round(float(np.median(err)), 1), round(float(np.max(np.abs(err))), 1),
                              cs[0].in_fit))
    return out


MIN_RESIDUALS = 5  # fewer errors than this make no spread (one Raspberry Pi row is not a range)
RESIDUAL_LEVELS = tuple(round(float(x), 2) for x in np.linspace(0.0, 1.0, 21))


def residual_quantiles(cases: Iterable[Case]) -> dict[str, dict[str, dict[str, object]]]:
    """Quantiles of the signed error per device kind and phase (all-reduces and GEMMs are components, not
    figures a user reads, so they are left out), as ``perf/ranges.py`` reads them."""
    from inferplan.specs.catalog import device_catalog  # noqa: PLC0415

    grouped: dict[str, dict[str, list[float]]] = {}
    for c in cases:
        if c.dataset in COMPONENT_DATASETS or c.device not in device_catalog():
            continue
        kind = device_catalog()[c.device].kind
        grouped.setdefault(kind, {}).setdefault(c.phase, []).append(c.error)
    table = {kind: {phase: {"levels": list(RESIDUAL_LEVELS),
                            "errors": [round(float(q), 4) for q in np.quantile(errs, RESIDUAL_LEVELS)],
                            "count": len(errs)}
                    for phase, errs in sorted(phases.items()) if len(errs) >= MIN_RESIDUALS}
             for kind, phases in sorted(grouped.items())}
    return {kind: phases for kind, phases in table.items() if phases}
