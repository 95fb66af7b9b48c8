"""EngineSpec: what a serving engine brings to a replica besides the model and the device.

The same model on the same GPU runs differently under vLLM, SGLang, TensorRT-LLM and
llama.cpp: the scheduler they run by default, how they size the KV cache, their host
time per step and per sequence, and their default limits. Each engine is one entry of
``catalog/engines.yaml``, every figure with its source; nothing here is code per engine.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from inferplan.specs.hardware import DeviceKind

MemoryRule = Literal["fraction-of-total", "fraction-of-free", "as-mapped"]
SlidingWindowKV = Literal["grouped", "per-layer", "swa-cells", "full"]


class HostOverhead(BaseModel):
    """Host time the engine adds to every step, outside the model's kernels."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    step_s: float = Field(ge=0, description="per step: scheduling, input preparation, launch or graph replay")
    per_sequence_s: float = Field(ge=0, description="per sequence per step: bookkeeping, sampling, detokenising")
    request_s: float = Field(default=0.0, ge=0, description="per request, outside the engine loop: HTTP, "
                                                            "tokenizing, streaming (added to TTFT and E2E)")
    overlapped: bool = Field(default=False, description="the host work of the next step runs while this step's "
                                                         "kernels do (vLLM's async scheduling): a step takes the "
                                                         "longer of the two, not their sum")
    source: str = Field(min_length=1)


class CustomAllReduce(BaseModel):
    """The engine's own all-reduce kernel for small messages (one-shot over NVLink), used instead of NCCL."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    latency_us: float = Field(gt=0, description="a small message's all-reduce time")
    max_bytes: float | None = Field(default=None, gt=0, description="largest message it takes")
    max_tokens: int | None = Field(default=None, gt=0, description="or: most tokens per message it takes")
    max_devices: int = Field(default=8, ge=2)
    source: str = Field(min_length=1)


class UnfusedActivations(BaseModel):
    """Memory traffic of an engine whose elementwise ops run as separate kernels on wide intermediates
    (llama.cpp's ggml graph keeps activations in f32), paid after the matmuls rather than hidden under them."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    bytes_per_value: float = Field(gt=0, description="bytes of one activation value (4: f32)")
    hidden_passes: float = Field(ge=0, description="reads and writes per token per layer of hidden-size tensors "
                                                   "(norms, rotary, residual adds, layout copies, casts)")
    intermediate_passes: float = Field(ge=0, description="the same for MLP-intermediate-size tensors "
                                                         "(gate and up outputs, activation, product, cast)")
    score_passes: float = Field(ge=0, description="passes over the f32 attention-score matrix per causal query-key "
                                                  "pair and head without flash attention (write, softmax, read); "
                                                  "ggml fills the whole masked square, which this number absorbs")
    source: str = Field(min_length=1)


class EngineDefaults(BaseModel):
    """The engine's own defaults for the limits inferplan names as vLLM does (EngineLimits)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_num_seqs: int = Field(ge=1)
    max_num_batched_tokens: int = Field(ge=1)
    block_size: int = Field(ge=1)
    memory_fraction: float = Field(gt=0, le=1)
    enable_chunked_prefill: bool = True
    flash_attention: bool = True
    source: str = Field(min_length=1)


class EngineSpec(BaseModel):
    """One serving engine as data: its scheduler, memory rule, host overhead and defaults."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    display_name: str = ""
    scheduler: str = Field(description="the policy (sim/policies) this engine runs by default")
    scheduler_source: str = Field(min_length=1)
    memory_rule: MemoryRule = Field(
        description="fraction-of-total: weights, activations and KV within memory_fraction of the device "
                    "(vLLM, SGLang); fraction-of-free: KV gets memory_fraction of what weights and activations "
                    "leave (TensorRT-LLM); as-mapped: no fraction, weights and KV as allocated (llama.cpp)")
    memory_source: str = Field(min_length=1)
    sliding_window_kv: SlidingWindowKV = Field(
        description="how sliding-window layers page their KV (perf/kv_layout.py): grouped (vLLM's hybrid KV "
                    "cache groups), per-layer (each layer its window), swa-cells (llama.cpp's SWA cache), or "
                    "full (every layer keeps the whole context)")
    sliding_window_source: str = Field(min_length=1)
    reserve_gib: float = Field(ge=0, description="engine memory outside weights, activations and KV "
                                                 "(CUDA context, graphs, allocator slack)")
    reserve_gib_on: dict[DeviceKind, float] = Field(
        default_factory=dict, description="reserve_gib on the device kinds where it differs (llama.cpp's Metal "
                                          "and CPU backends hold no CUDA context)")
    reserve_source: str = ""
    overhead: dict[DeviceKind | Literal["*"], HostOverhead] = Field(
        description="host overhead by device kind; '*' for the others")
    defaults: EngineDefaults
    runs_on: tuple[DeviceKind, ...] = Field(description="device kinds the engine serves on")
    launch: str = Field(description="the command the launch files write")
    custom_allreduce: CustomAllReduce | None = None
    fp16_accumulate: bool = Field(
        default=False, description="its 16-bit GEMMs accumulate in FP16, so they reach the device's FP16-accumulate "
                                   "peak (DeviceSpec.fp16_accumulate_tflops)")
    unfused_activations: UnfusedActivations | None = None
    scheduler_options: dict[str, float] = Field(
        default_factory=dict, description="the scheduler's own constants (SGLang: new_token_ratio), with the source "
                                          "in scheduler_source")
    priority_flags: tuple[str, ...] = Field(
        default=(), description="launch flags that schedule requests by their priority, lower first, preempting "
                                "the least important (empty: the engine has no priority scheduling)")
    priority_source: str = ""
    notes: str = ""

    def overhead_on(self, kind: str) -> HostOverhead:
        """The host overhead on a device of ``kind``."""
        found = self.overhead.get(kind) or self.overhead.get("*")  # type: ignore[call-overload]
        if found is None:
            raise KeyError(f"engine {self.name} has no host overhead for {kind} devices")
        return found

    def reserve_on(self, kind: str) -> float:
        """GiB the engine keeps outside weights, activations and KV on a device of ``kind``."""
        found: float = self.reserve_gib_on.get(kind, self.reserve_gib)  # type: ignore[call-overload]
        return found

    def runs(self, kind: str) -> bool:
        return kind in self.runs_on
