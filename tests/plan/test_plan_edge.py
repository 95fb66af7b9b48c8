"""`plan` on an edge device: llama.cpp's slots and context are searched, simulated and launched as one."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from tests.plan.test_plan_cli import run


@pytest.fixture(scope="module")
def jetson_plan(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    tmp = tmp_path_factory.mktemp("edge")
    r = run(tmp, "plan", "llama-3.2-1b", "--devices", "jetson-orin-nano-8gb", "--workload", "chat", "--rate", "0.2",
            "--num-requests", "60", "--slo", "ttft_p90=20s,tpot_p90=200ms", "--json", "--out", "out")
    assert r.returncode == 0, r.stderr
    return tmp, json.loads(r.stdout)


def _llama_server_args(tmp: Path) -> list[str]:
    launch = next((tmp / "out").glob("*/deploy/launch.sh")).read_text()
    line = next(line for line in launch.splitlines() if "llama-server" in line and not line.startswith("#"))
    args = shlex.split(line)
    return args[args.index("llama-server"):]


def test_launch_flags_are_the_simulated_limits(jetson_plan: tuple[Path, dict]) -> None:
    """-np is the simulated slot count, -c is slots x the simulated per-slot context, -b the token budget."""
    tmp, doc = jetson_plan
    pool = doc["fleet"][0]
    assert pool["engine"] == "llamacpp" and doc["verified"] is True
    args = _llama_server_args(tmp)
    flag = {args[i]: args[i + 1] for i in range(1, len(args) - 1) if args[i].startswith("-")}
    assert int(flag["-np"]) == pool["max_num_seqs"]
    assert int(flag["-c"]) == pool["max_num_seqs"] * pool["slot_context"]
    assert int(flag["-b"]) == pool["max_num_batched_tokens"]
    assert flag["-fa"] == ("on" if pool["flash_attention"] else "off")
    assert pool["slot_context"] % 256 == 0  # what llama.cpp allocates per slot, so the cells are the same


def test_an_owned_device_is_costed_by_its_energy(jetson_plan: tuple[Path, dict]) -> None:
    """No rental price: 25 W at the 2024 U.S. residential average of $0.1648/kWh."""
    _, doc = jetson_plan
    assert doc["fleet"][0]["price_per_replica_hour"] == pytest.approx(25 / 1000 * 0.1648, rel=1e-3)


def test_one_box_capacity_is_the_mix_rate_and_littles_law() -> None:
    """Two equal buckets served at 2 and 1 req/s: the mix holds 1 / (0.5/2 + 0.5/1) = 4/3 req/s; with a 3 s mean
    end-to-end time that is at least 4 conversations at once. A fleet of two replicas gets no such line."""
    from inferplan.cli.plan import one_box_capacity

    pool = {"device": "raspberry-pi-5", "count": 1, "disaggregated": False,
            "capacity_per_bucket_rps": {"short": 2.0, "long": 1.0}}
    doc = {"fleet": [pool], "buckets": [{"name": "short", "rate_per_s": 0.1}, {"name": "long", "rate_per_s": 0.1}],
           "predicted": {"e2e_s": {"mean": 3.0}}}
    line = one_box_capacity(doc)
    assert line is not None and "1.33 req/s" in line and "at least 4 conversations" in line
    assert one_box_capacity(doc | {"fleet": [pool | {"count": 2}]}) is None


def test_an_owned_boxs_cost_is_not_printed_as_zero() -> None:
    from inferplan.api import usd

    assert (usd(0.00412), usd(1.5), usd(0.0)) == ("$0.00412", "$1.50", "$0.00")
