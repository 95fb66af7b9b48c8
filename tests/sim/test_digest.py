"""A run's digest: the order statistics its CDFs are drawn from, and its round trip through digest.json."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from inferplan.api import SimulationConfig, simulate_config
from inferplan.sim.digest import MAX_POINTS, RunDigest, digest, thin_sorted


def test_thinning_keeps_the_extremes_and_evenly_spaced_order_statistics() -> None:
    values = np.concatenate([np.arange(10_000, 0, -1, dtype=float), [np.nan, np.inf]])
    kept = thin_sorted(values)
    assert kept.size == MAX_POINTS and kept[0] == 1 and kept[-1] == 10_000  # noqa: PLR2004
    assert np.all(np.diff(kept) > 0)
    assert abs(np.median(kept) - 5000.5) < 5  # noqa: PLR2004  (the order statistics keep the distribution)
    assert thin_sorted(np.array([3.0, np.nan, 1.0])).tolist() == [1.0, 3.0]  # few values: all, sorted


def test_a_digest_holds_every_finished_request_and_reads_back_the_same(tmp_path: Path) -> None:
    res, summary = simulate_config(SimulationConfig(workload="chat", rate=2, duration_s=30, replicas=2))
    d = digest(res)
    assert d.num_finished == summary.num_finished == d.latencies["ttft"].size
    assert np.isclose(np.percentile(d.latencies["ttft"], 90), summary.ttft_s.p90, rtol=1e-9)
    assert len(d.series["busy_pct"]) == 2 and d.t_s.size == d.arrivals_per_s.size  # noqa: PLR2004
    assert np.isclose(d.arrivals_per_s.sum() * d.bucket_s, summary.num_requests)
    back = RunDigest.read(d.write(tmp_path / "digest.json"))
    assert np.allclose(back.latencies["e2e"], d.latencies["e2e"], rtol=1e-6)
    assert all(np.allclose(a, b, atol=1e-6) for a, b in zip(back.series["running"], d.series["running"], strict=True))
