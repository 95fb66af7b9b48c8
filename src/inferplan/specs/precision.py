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
    engines: tuple[str, ...] = ("vllm", "sglang")
    requires: tuple[str, ...] = Field(default=(), description="device features without which no engine runs it")
    vllm_quantization: str | None = None
    llamacpp_type: str | None = None
    quality: QualityEffect | None = None
    notes: str = ""

    @property
    def bytes_per_weight(self) -> float:
        return self.bits_per_weight / 8

    def quality_loss_pct(self) -> float | None:
        return None if self.quality is None else self.quality.relative_loss_pct

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
