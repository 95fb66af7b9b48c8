"""Scale-out: the same plan's capacity sweep in one process, on the local process pool, and on Ray.

Run: python benchmarks/ray_speed.py [--survivors N] [--address ray://HEAD:10001]

Plans Llama-3.1-8B on the default devices with ``N`` configurations simulated per device (the
default plan simulates one or two; more makes the sweep larger), once per executor, each with
a fresh registry, and prints each one's wall time, its ratio to the serial run, and whether the
plans are identical. Ray joins ``--address`` (or ``RAY_ADDRESS``) when given, else starts a local
multi-process instance with one worker per core; its start-up is timed apart. Needs the
``ray`` extra: ``pip install 'inferplan[ray]'``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from inferplan.plan.search import PlanRequest, PlanResult, plan
from inferplan.store import Registry


def timed_plan(executor: str, survivors: int) -> tuple[float, PlanResult]:
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        result = plan(PlanRequest(executor=executor, survivors_per_device=survivors),
                      registry=Registry(Path(tmp) / "runs.sqlite"))
        return time.perf_counter() - t0, result


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--survivors", type=int, default=3, help="configurations simulated per device")
    ap.add_argument("--address", default="", help="a Ray cluster to join (default: RAY_ADDRESS, else a local one)")
    args = ap.parse_args()
    import ray  # noqa: PLC0415  (the optional extra this benchmark is about)

    t0 = time.perf_counter()
    address = args.address or os.environ.get("RAY_ADDRESS") or None
    ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False)
    startup = time.perf_counter() - t0
    cpus = int(ray.cluster_resources().get("CPU", 0))
    print(f"Ray {ray.__version__}: {'joined ' + address if address else 'local instance'}, {cpus} CPUs, "
          f"started in {startup:.1f} s; this machine has {os.cpu_count()} cores")
    runs = {ex: timed_plan(ex, args.survivors) for ex in ("serial", "local", "ray")}
    base, reference = runs["serial"]
    jobs = len(reference.survivors) * len(reference.buckets)
    print(f"plan llama-3.1-8b, {len(reference.survivors)} configurations x {len(reference.buckets)} buckets = "
          f"{jobs} capacity searches, then verification")
    for ex, (wall, result) in runs.items():
        same = result.fleet.replicas == reference.fleet.replicas and result.summary == reference.summary
        print(f"  {ex:<7} {wall:6.1f} s  {base / wall:4.2f}x serial  plan identical to serial: {same}")
    ray.shutdown()


if __name__ == "__main__":
    main()
