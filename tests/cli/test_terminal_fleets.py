"""The reactive autoscaler and power caps from `simulate`, in a pseudo-terminal, and their bad inputs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.cli.conftest import in_terminal, piped
from tests.cli.test_terminal import assert_ok


def test_simulate_with_an_hpa_says_how_it_scaled(tmp_path: Path) -> None:
    s = in_terminal(tmp_path, "simulate", "--workload", "diurnal-chat", "--rate", "10", "--duration", "900",
                    "--replicas", "3", "--router", "least-outstanding", "--autoscale-target", "20", columns=100)
    text = " ".join(assert_ok(s.text, s.exit_code).split())
    assert "autoscaled (HPA on concurrency, target 20 per replica, 1-3 replicas):" in text
    assert "on average" in text and "report:" in text
    # llama-3.1-8b bf16 on an H100: 3 s pod + 16 GB at 5 GB/s + 19 s + 0.51 s x 8.0 + 20 s = 49 s
    assert "cold starts:" in text
    assert "drawn around a 49 s median (pod, weights, engine start-up) with spread 0.3" in text


def test_simulate_with_an_image_pull_starts_replicas_later(tmp_path: Path) -> None:
    s = in_terminal(tmp_path, "simulate", "--workload", "diurnal-chat", "--rate", "10", "--duration", "900",
                    "--replicas", "3", "--router", "least-outstanding", "--autoscale-target", "20", "--image-pull",
                    "--cold-start-spread", "0", columns=100)
    text = " ".join(assert_ok(s.text, s.exit_code).split())
    # and 12 GB of image at 65 MB/s: 185 s more; spread 0, so every start takes the median
    # how many replicas start depends on the load; each start takes the median
    assert re.search(r"cold starts: [1-9]\d*, 234-234 s, drawn around a 234 s median \(pod, image pull, weights, "
                     r"engine start-up\)", text), text


def test_simulate_under_a_power_cap_names_it(tmp_path: Path) -> None:
    s = in_terminal(tmp_path, "simulate", "--workload", "chat", "--rate", "4", "--duration", "60", "--power-cap",
                    "350", columns=100)
    text = " ".join(assert_ok(s.text, s.exit_code).split())
    assert "power cap 350 W" in text and "J/token" in text


@pytest.mark.parametrize(("args", "needle"), [
    (("--autoscale-target", "5", "--autoscale-metric", "tokens"), "--autoscale-metric must be one of concurrency"),
    (("--autoscale-target", "0"), "--autoscale-target must be positive"),
    (("--autoscale-target", "5", "--min-replicas", "3"), "--min-replicas 3, at most 1 replicas"),
    (("--autoscale-target", "5", "--prefill-replicas", "1"), "leave out --prefill-replicas"),
    (("--autoscale-target", "5", "--cold-start-spread", "-1"), "--cold-start-spread must be 0 or more"),
])
def test_a_bad_autoscaler_is_one_clear_line(tmp_path: Path, args: tuple[str, ...], needle: str) -> None:
    r = piped(tmp_path, "simulate", *args)
    assert r.returncode == 2, r.stdout + r.stderr
    assert needle in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
