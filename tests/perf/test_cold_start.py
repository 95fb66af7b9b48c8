"""Cold starts (``perf/cold_start.py``): their parts by hand, the image pull, and the reactive autoscaler's draws
around the median with the asked spread, the same for the same seed."""

from __future__ import annotations

import numpy as np
import pytest

from inferplan.api import build_deployment
from inferplan.errors import InputError
from inferplan.perf.cold_start import cold_start
from inferplan.perf.memory import weights_bytes
from inferplan.sim.reactive import ReactiveScaler, ScalingPolicy


def test_a_cold_start_by_hand() -> None:
    """Llama-3.1-70B fp8 on two H100s (TP2): 3 s placing the pod; 73 GB through the host at 5 GB/s; vLLM's
    start-up, 19 s + 0.51 s x 70.6 billion parameters + 20 s compiling afresh; 12 GB of image at 65 MB/s."""
    dep = build_deployment("llama-3.1-70b", "h100-sxm", weights="fp8", tp=2)
    start = cold_start(dep)
    assert start.placement_s == 3.0 and start.image_s == 0.0
    assert dep.device.host_load_gb_s == 5 and start.weights_s == pytest.approx(2 * weights_bytes(dep) / 5e9)
    assert start.engine_s == pytest.approx(19.0 + 0.51 * dep.model.params_total / 1e9 + 20.0)
    assert 70e9 < dep.model.params_total < 71e9
    assert start.median_s == pytest.approx(3.0 + start.weights_s + start.engine_s)
    pulled = cold_start(dep, image_cached=False)
    assert pulled.image_s == pytest.approx(12 / 0.065)
    assert pulled.median_s == pytest.approx(start.median_s + 184.6, abs=0.1)
    assert "median" in start.describe() and "spread 0.3" in start.describe()


def test_starts_are_drawn_lognormal_around_the_median_and_repeat_with_the_seed() -> None:
    policy = ScalingPolicy(target=4.0, max_replicas=4000, min_replicas=0, cold_start_s=50.0, cold_start_spread=0.3)
    draws = []
    for _ in range(2):
        scaler = ReactiveScaler(((tuple(range(4000)), policy),), 4000, np.random.default_rng([7, 1]))
        for k in range(4000):
            scaler.start(k, 0.0)
        draws.append(np.array(scaler.cold_starts))
    assert (draws[0] == draws[1]).all()  # the same seed, the same starts
    logs = np.log(draws[0])
    assert np.exp(np.median(logs)) == pytest.approx(50.0, rel=0.03)
    assert logs.std() == pytest.approx(0.3, rel=0.05)
    fixed = ScalingPolicy(target=4.0, max_replicas=3, cold_start_s=50.0)  # spread 0: every start the median
    scaler = ReactiveScaler(((tuple(range(3)), fixed),), 3)
    scaler.start(2, 10.0)
    assert scaler.cold_starts == [50.0] and scaler.ready_at[2] == 60.0


def test_a_negative_cold_start_is_refused() -> None:
    with pytest.raises(InputError, match="--cold-start-spread must be 0 or more"):
        ScalingPolicy(target=4.0, max_replicas=3, cold_start_s=50.0, cold_start_spread=-1)
    with pytest.raises(InputError, match="a cold start must take 0 s or more, got -5 s"):
        ScalingPolicy(target=4.0, max_replicas=3, cold_start_s=-5.0)
