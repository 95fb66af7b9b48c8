"""KV eviction under a token budget as data: the methods (``catalog/kv_eviction.yaml``) and one replica's budget.

A budget keeps at most ``tokens`` tokens of each sequence's KV in every layer (attention sinks and the
most recent tokens for StreamingLLM; the most distinctive keys for KeyDiff), so memory and attention
stop growing with the context, like a sliding window over every layer. What it costs in quality is the
method's published figure where one covers the model and the budget, else unknown: a plan then treats
it as it treats a weight format of unknown quality.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from inferplan.errors import InputError


class EvictionQuality(BaseModel):
    """A published quality effect of a method at budgets of ``min_budget_tokens`` or more, on these models."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    min_budget_tokens: int = Field(ge=1)
    loss_pct: float = Field(ge=0)
    metric: str = Field(min_length=1)
    models: tuple[str, ...] = Field(min_length=1)
    source: str = Field(min_length=1)


class EvictionMethod(BaseModel):
    """One eviction method, as ``catalog/kv_eviction.yaml`` describes it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    display_name: str
    keeps: str = Field(min_length=1, description="which tokens' KV the budget keeps")
    quality: tuple[EvictionQuality, ...] = ()
    engines: dict[str, str] = Field(default_factory=dict, description="engine -> how its launch files set it")
    source: str = Field(min_length=1)

    def quality_for(self, model: str, tokens: int) -> EvictionQuality | None:
        """The published figure that covers ``model`` at a budget of ``tokens`` (None: unknown)."""
        found = [q for q in self.quality if model in q.models and tokens >= q.min_budget_tokens]
        return min(found, key=lambda q: q.loss_pct) if found else None


@dataclass(frozen=True, slots=True)
class KVBudget:
    """A replica's KV eviction: ``method`` (a catalog name) keeps ``tokens`` tokens per sequence per layer."""

    method: str
    tokens: int

    @classmethod
    def parse(cls, text: str) -> KVBudget:
        """``METHOD:TOKENS``, e.g. ``keydiff:8192``."""
        from inferplan.specs.catalog import kv_eviction_catalog

        name, sep, count = text.partition(":")
        methods = kv_eviction_catalog()
        if not sep or name.lower() not in methods or not count.strip().isdigit() or int(count) < 1:
            raise InputError(f"--kv-budget must be METHOD:TOKENS with METHOD one of {', '.join(methods)} and "
                             f"TOKENS a positive whole number, e.g. keydiff:8192 (got '{text}')")
        return cls(name.lower(), int(count))

    def method_spec(self) -> EvictionMethod:
        from inferplan.specs.catalog import kv_eviction_catalog

        return kv_eviction_catalog()[self.method]

    def label(self) -> str:
        return f"{self.method}:{self.tokens}"
