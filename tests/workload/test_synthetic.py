"""Synthetic workloads and transforms: rates, burstiness, determinism."""

from __future__ import annotations

import numpy as np
import pytest

from inferplan.errors import InputError
from inferplan.workload.presets import PRESETS, make_workload
from inferplan.workload.synthetic import Lengths, gamma_arrivals, poisson_arrivals, synthesize
from inferplan.workload.transforms import head, mix, scale_rate, window


def test_poisson_rate_and_cv() -> None:
    """Poisson gaps: mean 1/rate, coefficient of variation 1."""
    gaps = np.diff(poisson_arrivals(np.random.default_rng(0), 4.0, 50_000))
    assert gaps.mean() == pytest.approx(0.25, rel=0.02)
    assert gaps.std() / gaps.mean() == pytest.approx(1.0, rel=0.03)


def test_gamma_has_the_requested_cv() -> None:
    """Gamma gaps with cv=3 are three times as variable as their mean."""
    gaps = np.diff(gamma_arrivals(np.random.default_rng(0), 2.0, 100_000, cv=3.0))
    assert gaps.mean() == pytest.approx(0.5, rel=0.05)
    assert gaps.std() / gaps.mean() == pytest.approx(3.0, rel=0.08)


def test_chat_preset_matches_its_azure_fit() -> None:
    """chat: median input ~ e^6.633 = 760 tokens, median output ~ e^5.019 = 151."""
    wl = make_workload("chat", num_requests=40_000, seed=1)
    assert np.median(wl.input_tokens) == pytest.approx(760, rel=0.05)
    assert np.median(wl.output_tokens) == pytest.approx(151, rel=0.05)
    assert wl.mean_rate == pytest.approx(5.5, rel=0.05)


def test_same_seed_same_workload() -> None:
    """Workloads are a function of the seed."""
    a, b = make_workload("code", num_requests=100, seed=3), make_workload("code", num_requests=100, seed=3)
    assert np.array_equal(a.arrival_s, b.arrival_s) and np.array_equal(a.input_tokens, b.input_tokens)


def test_every_preset_builds() -> None:
    """All named presets produce valid workloads."""
    for name in PRESETS:
        wl = make_workload(name, num_requests=50, seed=0)
        assert len(wl) == 50 and (wl.output_tokens >= 1).all()


def test_transforms() -> None:
    """scale_rate, window, head and mix do what they say."""
    wl = synthesize(np.random.default_rng(0), n=1000, rate=2.0, inputs=Lengths("fixed", 10),
                    outputs=Lengths("fixed", 5))
    fast = scale_rate(wl, 8.0)
    assert fast.mean_rate == pytest.approx(8.0)
    assert len(head(wl, 10)) == 10
    w = window(wl, 100.0, 200.0)
    assert w.arrival_s[0] == 0 and w.duration_s < 100
    both = mix(head(wl, 10), head(fast, 10))
    assert len(both) == 20 and (np.diff(both.arrival_s) >= 0).all()


def test_unknown_workload_names_the_presets() -> None:
    """A typo in a preset name suggests the real ones."""
    with pytest.raises(InputError, match="chat"):
        make_workload("chta")


def test_nonpositive_rate_is_refused() -> None:
    with pytest.raises(InputError, match="rate"):
        make_workload("chat", rate=-1)
