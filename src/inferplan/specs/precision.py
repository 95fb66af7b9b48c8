"""Weight and KV-cache formats: how many bits, which kernels, and what they cost in quality.

Quality effects are data with a source (a paper's table or a model card), or
``None`` when nothing trustworthy is known: the planner treats unknown as
unknown, never as free.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class QualityEffect(BaseModel):
    """One measured quality change of a format against its 16-bit baseline."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    metric: str = Field(description="e.g. wikitext2_ppl, mmlu_acc")
    model: str = Field(description="the model it was measured on")
    baseline: float
    value: float
    higher_is_better: bool = False
    source: str

    @property
    def relative_loss_pct(self) -> float:
        """Quality lost, in percent of the baseline (positive = worse)."""
        change = (self.baseline - self.value) if self.higher_is_better else (self.value - self.baseline)
        return 100.0 * change / self.baseline


class WeightFormat(BaseModel):
    """How weights are stored and multiplied."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    display_name: str = ""
    aliases: tuple[str, ...] = ()
    bits_per_weight: float = Field(gt=0, le=32, description="effective, including scales and zero-points")
    bits_source: str
    compute_dtype: str = Field(description="dtype the matmul runs in where fast kernels exist")
    fallback_dtype: str = "bf16"
    fast_on: tuple[str, ...] = Field(description="device features or kinds with fast kernels ('*' = all)")
    slow_path_efficiency: float = Field(
        default=0.6, gt=0, le=1, description="compute efficiency when dequantizing without a fast kernel"
    )
    kernel: str | None = Field(
        default=None, description="the kernel family whose measured efficiencies price it (gguf: llama.cpp's "
                                  "quantized matmuls), when they differ from the compute dtype's")
    quantizes_embeddings: bool = Field(
        default=False, description="embedding and LM head stored in this format too (GGUF), else 16-bit"
    )
    experts_only: bool = Field(
        default=False, description="only routed experts stored in this format; attention, router, shared experts "
                                   "and dense MLPs stay 16-bit (gpt-oss's MXFP4 checkpoints)")
    engines: tuple[str, ...] = ("vllm", "sglang")
    requires: tuple[str, ...] = Field(default=(), description="device features without which no engine runs it")
    vllm_quantization: str | None = None
    llamacpp_type: str | None = None
    quality: QualityEffect | None = None
    notes: str = ""

    @property
    def bytes_per_weight(self) -> float:
        return self.bits_per_weight / 8

    @property
    def dense_bytes_per_weight(self) -> float:
        """Bytes of a weight outside the routed experts: 16-bit where the format stores experts only."""
        return 2.0 if self.experts_only else self.bytes_per_weight

    def quality_loss_pct(self) -> float | None:
        return None if self.quality is None else self.quality.relative_loss_pct

    def as_released(self, why: str) -> WeightFormat:
        """This format as the one a model was released in: the model itself, so no quality lost against it."""
        same = QualityEffect(metric="identity", model="the model as released", baseline=1.0, value=1.0, source=why)
        return self.model_copy(update={"quality": same})

    def is_fast_on(self, kind: str, features: tuple[str, ...]) -> bool:
        return "*" in self.fast_on or kind in self.fast_on or any(f in self.fast_on for f in features)


class KVFormat(BaseModel):
    """How the KV cache is stored."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    display_name: str = ""
    aliases: tuple[str, ...] = ()
    bits_per_value: float = Field(gt=0, le=32)
    bits_source: str
    vllm_kv_cache_dtype: str | None = None
    llamacpp_cache_type: str | None = None
    quality: QualityEffect | None = None
    notes: str = ""

    @property
    def bytes_per_value(self) -> float:
        return self.bits_per_value / 8

    def quality_loss_pct(self) -> float | None:
        return None if self.quality is None else self.quality.relative_loss_pct
