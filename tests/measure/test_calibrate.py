"""Calibration recovers known factors, reads llama-bench files, and refuses what it cannot use."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from inferplan.errors import InputError
from inferplan.measure.calibrate import (
    Observation,
    calibrate,
    from_llama_bench,
    predict,
    read_llama_bench,
    scaled_profile,
)
from inferplan.perf.profile import DeviceProfile
from inferplan.perf.step_cost import BatchShape, batch_shape
from inferplan.specs.catalog import get_device, get_model


def shapes() -> list[BatchShape]:
    """Compute-bound prefills, bandwidth-bound decodes and overhead-heavy tiny steps."""
    out = [batch_shape([(n, 0)]) for n in (256, 1024, 4096)]
    out += [BatchShape.decodes(b, b * c) for b in (1, 8, 64) for c in (128, 2048)]
    return out


def test_calibration_recovers_the_factors_that_generated_the_data() -> None:
    device = get_device("l4")
    # host time in series with the kernels (as validate's eager steps run), so the overhead factor shows
    base = DeviceProfile.default_for(device).model_copy(update={"host_overlapped": False})
    truth = (0.8, 1.1, 2.5, 1.0)
    true_prof, true_dev = scaled_profile(base, device, truth)
    model = get_model("llama-3.1-8b")
    obs = [Observation(model, "bf16", "bf16", s, 0.0, "synthetic") for s in shapes()]
    times = predict(obs, true_prof, true_dev)
    obs = [Observation(o.model, o.weights, o.kv, o.shape, float(t), "synthetic")
           for o, t in zip(obs, times, strict=True)]
    cal = calibrate(obs, base, device)
    assert cal.factors["compute"] == pytest.approx(0.8, rel=0.02)
    assert cal.factors["bandwidth"] == pytest.approx(1.1, rel=0.02)
    assert cal.factors["overhead"] == pytest.approx(2.5, rel=0.05)
    assert cal.median_after < 0.5 < cal.median_before
    assert cal.profile.uncertainty["step_time_log_sd"] < 0.01
    # the calibrated profile predicts what was measured
    again = predict(obs, cal.profile, device)
    assert all(math.isclose(a, t, rel_tol=0.02) for a, t in zip(again, times, strict=True))


def test_noise_shows_up_as_uncertainty() -> None:
    device = get_device("l4")
    base = DeviceProfile.default_for(device)
    model = get_model("llama-3.1-8b")
    obs = [Observation(model, "bf16", "bf16", s, 0.0, "synthetic") for s in shapes()]
    times = predict(obs, base, device)
    noise = np.random.default_rng(7).normal(0.0, 0.1, len(times))  # 10% log-normal measurement noise
    noisy = times * np.exp(noise)
    cal = calibrate([Observation(o.model, o.weights, o.kv, o.shape, t, "n") for o, t in zip(obs, noisy, strict=True)],
                    base, device, fit=("compute", "overhead"))
    assert 0.04 < cal.log_sd < 0.2
    assert cal.factors["compute"] == pytest.approx(1.0, rel=0.15)
    # compute is pinned by three compute-bound prefills; a 2 ms overhead inside 65 ms steps barely is
    assert 0 < cal.std_errors["compute"] < 0.2 < cal.std_errors["overhead"]


# M2 Ultra, LLaMA 7B Q4_0, Metal: pp512 1164.00 t/s (llama.cpp PR #3084), tg128 88.54 t/s (PR #2917)
MARKDOWN = """
| model                          |       size |     params | backend    | ngl | test       |              t/s |
| ------------------------------ | ---------: | ---------: | ---------- | --: | ---------- | ---------------: |
| llama 7B mostly Q4_0           |   3.56 GiB |     6.74 B | Metal      |  99 | pp512      |   1164.00 ± 1.86 |
| llama 7B mostly Q4_0           |   3.56 GiB |     6.74 B | Metal      |  99 | tg128      |     88.54 ± 0.04 |
"""


def test_llama_bench_markdown_and_json_read_the_same(tmp_path: Path) -> None:
    md = tmp_path / "bench.md"
    md.write_text(MARKDOWN)
    js = tmp_path / "bench.json"
    js.write_text(json.dumps([{"n_prompt": 512, "n_gen": 0, "avg_ts": 1164.0},
                              {"n_prompt": 0, "n_gen": 128, "avg_ts": 88.54}]))
    assert read_llama_bench(md) == read_llama_bench(js) == [(512, 0, 0, 1164.0), (0, 128, 0, 88.54)]
    obs = from_llama_bench(js, "llama-3.1-8b", "q4_0")
    assert obs[0].shape.prefill_tokens == 512 and obs[0].seconds == pytest.approx(512 / 1164.0)
    assert obs[1].shape.num_decodes == 1 and obs[1].seconds == pytest.approx(1 / 88.54)


def test_bad_llama_bench_files_are_clear_errors(tmp_path: Path) -> None:
    empty = tmp_path / "x.md"
    empty.write_text("nothing here\n")
    with pytest.raises(InputError, match="no llama-bench results"):
        read_llama_bench(empty)
    bad = tmp_path / "x.json"
    bad.write_text('[{"n_prompt": 512}]')
    with pytest.raises(InputError, match="lacks n_prompt, n_gen or avg_ts"):
        read_llama_bench(bad)
    with pytest.raises(InputError, match="at least 3"):
        calibrate([], DeviceProfile(), get_device("l4"))
