"""Which speculative-decoding settings the planner searches: off, and each drafter the model has, per k."""

from __future__ import annotations

from inferplan.errors import InputError
from inferplan.perf.resolve import resolve_speculation
from inferplan.specs.catalog import speculation_catalog
from inferplan.specs.model import ModelSpec
from inferplan.specs.speculation import Speculation

SEARCHED_K = (1, 2, 3, 4, 5)  # drafts per step tried where --spec-tokens is not given


def speculation_options(model: ModelSpec, asked: str, *, k: int | None = None, acceptance: str | None = None,
                        draft: str | None = None, seed: int = 0) -> tuple[Speculation | None, ...]:
    """``asked``: "off" (no speculation), "auto" (every method this model has a drafter for: a public head,
    its own MTP layers, n-gram lookup, a --spec-draft model) or one method. Off is always among the options,
    so the plan speculates only where simulation shows it costs less."""
    if asked == "off":
        resolve_speculation(None, k=k, acceptance=acceptance, draft=draft)  # stray --spec-* options: an error
        return (None,)
    if asked == "auto":
        methods = [m for m in speculation_catalog().values() if _has_drafter(m.name, model, draft)]
    else:
        methods = [speculation_catalog()[asked]] if asked in speculation_catalog() else []
        if not methods:
            choices = ", ".join(["off", "auto", *speculation_catalog()])
            raise InputError(f"--spec must be one of {choices} (got '{asked}')")
        if not _has_drafter(asked, model, draft):
            raise InputError(f"no {methods[0].display_name} is known for {model.name}, so no launch file could "
                             f"load one: use --spec auto to search the drafters it has"
                             + (" (or --spec draft --spec-draft MODEL)" if asked != "draft" else ""))
    options: list[Speculation | None] = [None]
    for m in methods:
        for tokens in (k,) if k is not None else SEARCHED_K:
            spec = resolve_speculation(m.name, k=tokens, acceptance=acceptance,
                                       draft=draft if m.drafter == "model" else None, seed=seed)
            assert spec is not None
            spec.check_target(model)
            options.append(spec)
    return tuple(options)


def _has_drafter(method: str, model: ModelSpec, draft: str | None) -> bool:
    m = speculation_catalog()[method]
    if m.drafter == "head":
        return model.name in m.heads
    if m.drafter == "mtp":
        return model.mtp_layers > 0
    if m.drafter == "model":
        return draft is not None
    return True
