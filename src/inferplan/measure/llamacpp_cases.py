"""Published llama-bench results replayed: prompt (pp) and generation (tg) speed, and the memory verdict.

The calibration table is XiongjieDai's GPU-Benchmarks-on-LLM-Inference (LLaMA 3 section, May 2024
llama.cpp, CUDA and Metal), read from the measurements folder (``--measurements``); its setup is in
``measure/data/README.md``. That build ran llama-bench's defaults: n_batch 2048, n_ubatch 512, f16 KV,
flash attention off, every layer offloaded, layers split over the GPUs of multi-GPU rows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from inferplan.errors import InputError
from inferplan.measure.llama_bench import BenchSetup, generate_tokens_per_s, prompt_tokens_per_s, test_tokens
from inferplan.perf.deployment import Deployment
from inferplan.perf.memory import plan_memory
from inferplan.perf.profile import DeviceProfile
from inferplan.perf.resolve import resolve_deployment
from inferplan.perf.step_cost import StepCost
from inferplan.specs.catalog import device_catalog

XIONGJIEDAI_FILE = "llamacpp_xiongjiedai_llama3_gpus_apple.csv"
DATASET = "llamacpp-xiongjiedai"
_TESTS = ("tg512", "tg1024", "tg4096", "tg8192", "pp512", "pp1024", "pp4096", "pp8192")
_COLUMNS = ("gpu_config", "num_gpus", "model_quant", *(f"{t}_tps" for t in _TESTS))
_MODELS = {"8B": "llama-3.1-8b", "70B": "llama-3.1-70b"}  # Llama 3 and 3.1 share the shapes priced here
_FORMATS = {"Q4_K_M": "gguf-q4_k_m", "F16": "fp16"}
# the table's GPU names -> catalog devices
DEVICES = {
    "3070 8GB": "rtx-3070", "3080 10GB": "rtx-3080", "3080 Ti 12GB": "rtx-3080-ti", "4070 Ti 12GB": "rtx-4070-ti",
    "4080 16GB": "rtx-4080", "3090 24GB": "rtx-3090", "4090 24GB": "rtx-4090", "RTX 4000 Ada 20GB": "rtx-4000-ada",
    "RTX 5000 Ada 32GB": "rtx-5000-ada", "RTX A6000 48GB": "rtx-a6000", "RTX 6000 Ada 48GB": "rtx-6000-ada",
    "A40 48GB": "a40", "L40S 48GB": "l40s", "A100 PCIe 80GB": "a100-pcie-80gb", "A100 SXM 80GB": "a100-80gb",
    "H100 PCIe 80GB": "h100-pcie", "M1 7-Core GPU 8GB": "m1-8gb", "M1 Max 32-Core GPU 64GB": "m1-max-64gb",
    "M2 Ultra 76-Core GPU 192GB": "m2-ultra-192gb", "M3 Max 40-Core GPU 64GB": "m3-max-64gb",
}
ProfileFor = Callable[[Deployment], DeviceProfile | None]


@dataclass(frozen=True, slots=True)
class BenchRow:
    """One measured configuration: the replica, how llama-bench split it, and its results by test."""

    label: str
    deployment: Deployment
    setup: BenchSetup
    results: dict[str, float | None]  # test -> tokens/s; None: the source printed OOM


def bench_rows(path: Path, profile_for: ProfileFor | None = None) -> Iterator[BenchRow]:
    """The table's rows whose GPU the catalog has, without the prompt results of F16 rows that ran slower than
    Q4_K_M on the same GPUs (``suspect_f16_prompts``)."""
    from inferplan.measure.accuracy import read_rows  # noqa: PLC0415  (accuracy imports this module)

    table = read_rows(path, _COLUMNS)
    suspect = suspect_f16_prompts(table)
    for row in table:
        name, _, _ = row["gpu_config"].partition(" * ")
        device, (size, quant) = DEVICES.get(name, ""), row["model_quant"].split()
        if device not in device_catalog() or size not in _MODELS or quant not in _FORMATS:
            continue
        devices = int(row["num_gpus"])
        dep = _deployment(_MODELS[size], device, _FORMATS[quant], devices, profile_for)
        results = {t: None if row[f"{t}_tps"] == "OOM" else float(row[f"{t}_tps"])
                   for t in _TESTS if row[f"{t}_tps"] and not (t.startswith("pp") and _key(row) in suspect)}
        yield BenchRow(f"{size} {quant} on {row['gpu_config']}", dep, BenchSetup(devices=devices), results)


def _key(row: dict[str, str]) -> tuple[str, str, str]:
    return row["gpu_config"], row["model_quant"].split()[0], row["model_quant"].split()[1]


def suspect_f16_prompts(table: list[dict[str, str]]) -> set[tuple[str, str, str]]:
    """F16 rows whose pp512 is below Q4_K_M's on the same GPUs and model. Everywhere else in the table F16
    prompts run 1.1-1.5x faster than Q4_K_M (16-bit GEMMs need no dequantizing), and these rows run at a
    third to a tenth of that (the A100 SXM's 604 t/s against the A100 PCIe's 7,741): a broken run, not a
    kernel path, so they are neither fitted nor scored."""
    q4 = {(r["gpu_config"], r["model_quant"].split()[0]): float(r["pp512_tps"]) for r in table
          if r["model_quant"].endswith("Q4_K_M") and r["pp512_tps"] not in ("", "OOM")}
    return {_key(r) for r in table if r["model_quant"].endswith("F16") and r["pp512_tps"] not in ("", "OOM")
            and float(r["pp512_tps"]) < q4.get((r["gpu_config"], r["model_quant"].split()[0]), 0.0)}


# The table's build prefilled quantized weights by dequantizing them to F16 for cuBLAS (ggml-cuda used MMQ
# only up to 32 rows on Volta and newer); today's runs MMQ on int8 tensor cores (mmq.cu ggml_cuda_should_use_mmq).
# The change's own measurement, RTX 4090, Llama-3-8B Q4_0, ubatch 512: 7,776.11 -> 10,358.75 t/s (llama.cpp PR
# #7676). The shipped gguf efficiency is today's kernel; the replay of the May-2024 build runs it at that ratio.
DEQUANT_CUBLAS_VS_MMQ = 7776.11 / 10358.75


def _deployment(model: str, device: str, weights: str, devices: int, profile_for: ProfileFor | None) -> Deployment:
    # llama-bench's context is n_prompt + n_gen (at most 8192 here), one sequence, one ubatch of compute buffer
    limits = {"max_num_seqs": 1, "max_num_batched_tokens": 512, "flash_attention": False}
    dep = resolve_deployment(model, device, weights=weights, kv="fp16", pp=devices, engine="llamacpp", limits=limits)
    profile = (profile_for(dep) if profile_for else None) or dep.device_profile
    if dep.device.is_gpu_like:  # CUDA rows: the build's dequantize-and-cuBLAS path for GGUF prompts
        by_dtype = dict(profile.matmul_efficiency_by_dtype)
        by_dtype["gguf"] = profile.matmul_efficiency_of("gguf") * DEQUANT_CUBLAS_VS_MMQ
        profile = profile.model_copy(update={"matmul_efficiency_by_dtype": by_dtype})
    return resolve_deployment(model, device, weights=weights, kv="fp16", pp=devices, engine="llamacpp",
                              limits=limits, profile=profile)


@dataclass(frozen=True, slots=True)
class SpeedCase:
    device: str
    test: str
    label: str
    measured: float
    predicted: float


def speed_cases(rows: list[BenchRow]) -> Iterator[SpeedCase]:
    """Each row's measured tokens/s against the replayed llama-bench test."""
    for row in rows:
        cost = StepCost(row.deployment)
        for test, measured in row.results.items():
            if measured is None:
                continue
            kind, n = test_tokens(test)
            predicted = (prompt_tokens_per_s(cost, n, row.setup) if kind == "pp"
                         else generate_tokens_per_s(cost, n))
            yield SpeedCase(row.deployment.device.name, test, row.label, measured, predicted)


@dataclass(frozen=True, slots=True)
class MemoryVerdict:
    """Whether the memory model agrees with what ran: every test that ran must fit its context."""

    label: str
    context: int
    ran: bool
    predicted_fits: bool


def memory_verdicts(rows: list[BenchRow]) -> Iterator[MemoryVerdict]:
    """llama-bench makes a context of n_prompt + n_gen cells per test, so each test is one slot of that
    context: its KV cells and compute buffer are allocated up front, and the test fits if they do."""
    for row in rows:
        for test, measured in row.results.items():
            context = test_tokens(test)[1]
            dep = replace(row.deployment, limits=replace(row.deployment.limits, slot_context=context))
            mem = plan_memory(dep)
            yield MemoryVerdict(f"{row.label} {test}", context, measured is not None, mem.num_kv_blocks > 0)


def read_bench_rows(measurements: Path, profile_for: ProfileFor | None = None) -> list[BenchRow]:
    path = measurements / XIONGJIEDAI_FILE
    if not path.exists():
        raise InputError(f"{measurements}: no {XIONGJIEDAI_FILE} in it (the llama.cpp calibration table)")
    return list(bench_rows(path, profile_for))


# ---- the published rows the project collected (measure/data/llamacpp_published.csv): checked, never fitted
PUBLISHED_FILE = "llamacpp_published.csv"
PUBLISHED_DATASET = "llamacpp-published"
_PUBLISHED_COLUMNS = ("source_id", "device", "backend", "model", "weights", "test", "depth", "flash_attn", "n_ubatch",
                      "tokens_per_s")


def published_cases(path: Path) -> Iterator[tuple[str, SpeedCase]]:
    """(backend, case) per row: the row's own n_ubatch and flash-attention setting, depth as printed."""
    from inferplan.measure.accuracy import read_rows  # noqa: PLC0415  (accuracy imports this module)

    for row in read_rows(path, _PUBLISHED_COLUMNS):
        ubatch, depth = int(row["n_ubatch"]), int(row["depth"])
        kind, n = test_tokens(row["test"])
        limits = {"max_num_seqs": 1, "max_num_batched_tokens": ubatch, "flash_attention": row["flash_attn"] == "1"}
        dep = resolve_deployment(row["model"], row["device"], weights=row["weights"], kv="fp16", engine="llamacpp",
                                 limits=limits)
        cost = StepCost(dep)
        predicted = (prompt_tokens_per_s(cost, n, BenchSetup(n_ubatch=ubatch), depth) if kind == "pp"
                     else generate_tokens_per_s(cost, n, depth))
        label = f"{row['model']} {row['weights']} {row['test']}" + (f" @ d{depth}" if depth else "")
        yield row["backend"], SpeedCase(row["device"], row["test"], f"{label} ({row['source_id']})",
                                        float(row["tokens_per_s"]), predicted)
