"""Speculative decoding as data: the methods engines run (``catalog/speculation.yaml``) and one replica's choice.

A method says what drafts the tokens (a head beside the target, the target's own multi-token
prediction layers, a separate draft model, or n-gram lookup in the prompt, which needs no model),
how large that drafter is, how often its tokens are accepted by default (with the source of the
figure), and what each engine calls it. A ``Speculation`` is one replica's setting: a method,
``k`` tokens proposed per step, and the per-token acceptance rate as a distribution over requests.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from inferplan.errors import InputError
from inferplan.specs.model import ModelSpec

Drafter = Literal["head", "mtp", "model", "none"]


class SpecMethod(BaseModel):
    """One speculative-decoding method, as ``catalog/speculation.yaml`` describes it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    display_name: str
    drafter: Drafter  # head: a small network on the target's hidden states; mtp: the model's own layers
    head_layers: int = Field(default=1, ge=0, description="decoder layers of a head or an MTP module")
    fused_hidden_states: int = Field(default=0, ge=0, description="target hidden states a head's input "
                                                                  "projection fuses (EAGLE-3: 3, EAGLE: 2)")
    draft_vocab: int | None = Field(default=None, gt=0, description="a head's own output vocabulary; "
                                                                    "None: it shares the target's LM head")
    acceptance: float = Field(ge=0, le=1, description="default per-token acceptance rate, chain drafting")
    acceptance_spread: float = Field(default=0.0, ge=0, le=0.5, description="standard deviation of the "
                                                                            "per-request rate")
    acceptance_source: str = Field(min_length=1)
    default_k: int = Field(ge=1, le=16)
    engines: dict[str, str] = Field(description="engine name -> what that engine calls the method")
    heads: dict[str, str] = Field(default_factory=dict, description="target model -> a public head checkpoint")
    source: str = Field(min_length=1)


@dataclass(frozen=True, slots=True, kw_only=True)
class Speculation:
    """A replica's speculative decoding: the target verifies ``k`` drafted tokens per sequence each step and
    keeps the longest accepted prefix plus one token of its own (Leviathan et al. 2023, arXiv 2211.17192).

    ``acceptance``: the mean per-token acceptance rate; each request draws its own rate from a Beta
    distribution with that mean and ``acceptance_spread`` standard deviation (0: every request the same),
    or, where ``measured`` rates are given, from those (with replacement)."""

    method: SpecMethod
    k: int
    acceptance: float
    acceptance_spread: float = 0.0
    measured: tuple[float, ...] = ()
    draft: ModelSpec | None = None  # the draft model (drafter "model"); heads are derived from the target
    seed: int = 0

    def __post_init__(self) -> None:
        if not 1 <= self.k <= 16:
            raise InputError(f"--spec-tokens must be between 1 and 16 proposed tokens per step (got {self.k})")
        for rate in (self.acceptance, *self.measured):
            if not 0.0 <= rate <= 1.0:
                raise InputError(f"--spec-acceptance must be a per-token acceptance rate in [0, 1] (got {rate:g})")
        mean = self.acceptance
        if self.acceptance_spread < 0 or (self.acceptance_spread and
                                          self.acceptance_spread ** 2 >= mean * (1 - mean)):
            raise InputError(f"--spec-acceptance-spread {self.acceptance_spread:g} is too wide for a mean rate of "
                             f"{mean:g}: a rate in [0, 1] with that mean has a standard deviation below "
                             f"{(mean * (1 - mean)) ** 0.5:.3f}")
        if (self.method.drafter == "model") != (self.draft is not None):
            raise InputError(f"speculative method {self.method.name} "
                             + ("needs a draft model: give --spec-draft MODEL" if self.draft is None
                                else "drafts without a separate model; drop --spec-draft"))

    @property
    def mean_tokens_per_step(self) -> float:
        """Tokens a sequence gains per verification step at the mean rate: (1 - a^(k+1)) / (1 - a)."""
        a = self.acceptance
        return float(self.k + 1) if a >= 1.0 else (1.0 - a ** (self.k + 1)) / (1.0 - a)

    def key(self) -> dict[str, object]:
        """Every field as JSON-able data, for a deployment's cache key."""
        return {"method": self.method.model_dump(mode="json"), "k": self.k, "acceptance": self.acceptance,
                "acceptance_spread": self.acceptance_spread, "measured": list(self.measured),
                "draft": asdict(self.draft) if self.draft else None, "seed": self.seed}

    def head(self, target: str) -> str | None:
        """The public head checkpoint for ``target`` (a head method with one known), else None."""
        return self.method.heads.get(target) if self.method.drafter == "head" else None

    def describe(self, target: str) -> dict[str, object]:
        """What a plan's JSON says of it: method, k, the acceptance it was planned for and the drafter."""
        return {"method": self.method.name, "k": self.k, "acceptance": self.acceptance,
                "acceptance_source": ("measured per request (--spec-acceptance FILE)" if self.measured
                                      else self.method.acceptance_source if self.acceptance == self.method.acceptance
                                      else "given (--spec-acceptance)"),
                "mean_tokens_per_step": round(self.mean_tokens_per_step, 3),
                "draft_model": self.draft.name if self.draft else None, "head": self.head(target)}

    def label(self) -> str:
        drafted = f" {self.draft.name}" if self.draft else ""
        return f"{self.method.name}{drafted} k={self.k} a={self.acceptance:g}"

    def check_target(self, target: ModelSpec) -> None:
        """The drafter suits the target: a draft model smaller than it, MTP layers the checkpoint has."""
        if self.draft is not None and self.draft.params_total >= target.params_total:
            raise InputError(f"the draft model {self.draft.name} ({self.draft.params_total / 1e9:.1f}B parameters) "
                             f"is not smaller than the target {target.name} ({target.params_total / 1e9:.1f}B); "
                             "choose a smaller --spec-draft")
        if self.draft is not None and self.draft.vocab_size != target.vocab_size:
            raise InputError(f"the draft model {self.draft.name} has a vocabulary of {self.draft.vocab_size:,} "
                             f"tokens and {target.name} one of {target.vocab_size:,}: a draft model must share "
                             "the target's tokenizer; choose one of the same family")
        if self.method.drafter == "mtp" and not target.mtp_layers:
            raise InputError(f"{target.name}'s config.json has no multi-token-prediction layers "
                             "(num_nextn_predict_layers); use --spec eagle3, ngram or draft")


def load_measured_rates(path: Path) -> tuple[float, ...]:
    """Per-request acceptance rates a user measured: a JSON list of numbers, or one number per line."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise InputError(f"--spec-acceptance {path}: cannot read it ({exc.strerror}); give a rate in [0, 1] or a "
                         "file of measured per-request rates (a JSON list, or one number per line)") from None
    try:
        values = json.loads(text) if text.lstrip().startswith("[") else [float(x) for x in text.split()]
    except ValueError:
        raise InputError(f"--spec-acceptance {path}: expected a JSON list of rates or one number per line") from None
    if not values or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        raise InputError(f"--spec-acceptance {path}: expected at least one rate, each a number in [0, 1]")
    bad = [v for v in values if not 0.0 <= v <= 1.0]
    if bad:
        raise InputError(f"--spec-acceptance {path}: {bad[0]:g} is not a per-token acceptance rate in [0, 1]")
    return tuple(float(v) for v in values)
