"""A Mac's GPU wired-memory limit (--wired-limit): the capacity fit and simulate plan with, and the fix fit
suggests when macOS's default limit is what stops a model."""

from __future__ import annotations

import pytest

from inferplan.api import build_deployment, fit
from inferplan.errors import InputError
from inferplan.perf.memory import plan_memory

GIB = 2**30


def test_the_limit_is_the_capacity() -> None:
    """A 32 GB M2 Pro: macOS's default lets the GPU hold 0.67 of it; with iogpu.wired_limit_mb=26624 it holds
    26 GiB, and llama.cpp (no utilisation fraction) budgets exactly that."""
    default = plan_memory(build_deployment("qwen3-32b", "m2-pro-32gb", weights="gguf-q4_k_m"))
    raised = plan_memory(build_deployment("qwen3-32b", "m2-pro-32gb", weights="gguf-q4_k_m", wired_limit_gib=26))
    assert default.capacity_bytes == pytest.approx(0.67 * 32 * GIB)
    assert raised.capacity_bytes == raised.budget_bytes == 26 * GIB
    assert raised.kv_budget_bytes - default.kv_budget_bytes == pytest.approx((26 - 0.67 * 32) * GIB)


def test_fit_suggests_the_smallest_limit_that_holds_one_sequence() -> None:
    """Qwen3 32B Q4_K_M at 16,384 tokens misses a 32 GB Mac's default limit; fit names the smallest whole-GiB
    limit that holds it, the sysctl value (GiB x 1024) and what it leaves macOS, and that limit does fit."""
    dep = build_deployment("qwen3-32b", "m2-pro-32gb", weights="gguf-q4_k_m")
    r = fit(dep, context=16384)
    tip = next(t for t in r.suggestions if t.startswith("--wired-limit"))
    gib = int(tip.split()[1])
    assert f"iogpu.wired_limit_mb={gib * 1024}" in tip and f"leaving {32 - gib} GiB" in tip
    assert fit(build_deployment("qwen3-32b", "m2-pro-32gb", weights="gguf-q4_k_m", wired_limit_gib=gib),
               context=16384).fits_context
    assert not fit(build_deployment("qwen3-32b", "m2-pro-32gb", weights="gguf-q4_k_m", wired_limit_gib=gib - 1),
                   context=16384).fits_context
    assert r.wired_limit_gib == pytest.approx(0.67 * 32)


def test_no_limit_is_suggested_that_would_starve_macos() -> None:
    """70B F16 (131 GiB of weights) cannot fit a 64 GB Mac at any limit that leaves macOS 4 GiB."""
    r = fit(build_deployment("llama-3.1-70b", "m1-max-64gb", weights="fp16", engine="llamacpp"), context=8192)
    assert not r.fits and not any(t.startswith("--wired-limit") for t in r.suggestions)


def test_only_a_mac_has_one() -> None:
    with pytest.raises(InputError, match="not an Apple chip"):
        build_deployment("llama-3.1-8b", "rtx-4090", wired_limit_gib=20)
    with pytest.raises(InputError, match="above 0"):
        build_deployment("llama-3.1-8b", "m1-8gb", wired_limit_gib=0)
    assert fit(build_deployment("llama-3.1-8b", "rtx-4090"), context=4096).wired_limit_gib is None
