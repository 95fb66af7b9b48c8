"""Simulator speed of this checkout against another one, alternated in one process.

Run: python benchmarks/sim_ab.py OTHER_SRC [--requests N] [--pairs K] [--scenario chat|two-replicas|round-robin]

OTHER_SRC is the ``src`` directory of another checkout (for example a ``git worktree`` of an
older commit). Its ``inferplan`` package is copied under the name ``inferplan_other`` into a
temporary directory, so both versions are imported side by side; runs then alternate
(other, this, other, this, ...) on the same workload, and the script prints each pair's ratio
and the median. The host's speed drifts by up to 2x over minutes, which affects both sides of a
pair alike, so the ratio means more than either wall time.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import re
import shutil
import statistics
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

SCENARIOS = {
    "chat": ("llama-3.1-8b", "h100-sxm", 1, "round-robin"),  # the sim_speed.py scenario: one replica
    "two-replicas": ("gemma-2-9b", "a100-80gb", 2, "least-kv"),  # a router reads loads: leaps end at arrivals
    "round-robin": ("llama-3.1-8b", "a10g", 3, "round-robin"),  # arrivals assigned up front
}


def _copy_as(src: Path, name: str, into: Path) -> None:
    """Copy package ``src`` to ``into/name``, rewriting its absolute imports to the new name."""
    dst = into / name
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__"))
    for path in dst.rglob("*.py"):
        text = path.read_text()
        text = re.sub(r"\binferplan(?=[.\s])", name, text)
        path.write_text(text)


def _runner(package: str, scenario: str, requests: int) -> Callable[[], float]:
    model, device, replicas, router = SCENARIOS[scenario]
    api = importlib.import_module(f"{package}.api")
    loop = importlib.import_module(f"{package}.sim.loop")
    policies = importlib.import_module(f"{package}.sim.policies")
    presets = importlib.import_module(f"{package}.workload.presets")
    wl = presets.make_workload("chat", num_requests=requests, seed=0)
    dep = api.build_deployment(model, device)

    fleet: object = [dep] * replicas  # checkouts before the cluster value took a list of deployments
    if importlib.util.find_spec(f"{package}.sim.cluster") is not None:
        fleet = importlib.import_module(f"{package}.sim.cluster").Cluster.replicas(fleet)

    def run() -> float:
        return float(loop.simulate(wl, fleet, policies.get_policy("vllm"), router=router).wall_s)

    return run


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("other_src", type=Path, help="the src directory of the checkout to compare against")
    ap.add_argument("--requests", type=int, default=20_000)
    ap.add_argument("--pairs", type=int, default=6)
    ap.add_argument("--scenario", choices=sorted(SCENARIOS), default="chat")
    args = ap.parse_args()
    package = args.other_src / "inferplan"
    if not (package / "sim" / "loop.py").is_file():
        sys.exit(f"error: {args.other_src} has no inferplan/sim/loop.py; pass the src directory of a checkout")
    with tempfile.TemporaryDirectory() as tmp:
        _copy_as(package, "inferplan_other", Path(tmp))
        sys.path[:0] = [tmp, str(Path(__file__).resolve().parents[1] / "src")]  # this checkout, not an install
        other, this = _runner("inferplan_other", args.scenario, args.requests), _runner("inferplan", args.scenario,
                                                                                          args.requests)
        other(), this()  # warm up both
        ratios = []
        for k in range(args.pairs):
            t_other, t_this = other(), this()
            ratios.append(t_other / t_this)
            print(f"pair {k + 1}: other {t_other:.2f} s, this {t_this:.2f} s, this is {t_other / t_this:.2f}x faster")
    print(f"{args.scenario}, {args.requests:,} requests: median {statistics.median(ratios):.2f}x "
          f"(range {min(ratios):.2f}-{max(ratios):.2f}x over {args.pairs} pairs)")


if __name__ == "__main__":
    main()
