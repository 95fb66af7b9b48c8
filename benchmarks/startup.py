"""Whole-process start-up of the quick verbs, against bare Python in the same run.

Run: python benchmarks/startup.py [--repeats 15]
Each command runs as a fresh process (as a person types it), interleaved with `python -c pass`
so that the host's drift affects both alike; the medians and their ratio are printed. The
commands are `python -m inferplan.cli ...`, which is what the `inferplan` script runs.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

COMMANDS = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "inferplan version": [sys.executable, "-m", "inferplan.cli", "version"],
    "inferplan --help": [sys.executable, "-m", "inferplan.cli", "--help"],
    "inferplan models": [sys.executable, "-m", "inferplan.cli", "models"],
    "inferplan devices": [sys.executable, "-m", "inferplan.cli", "devices"],
    "inferplan fit": [sys.executable, "-m", "inferplan.cli", "fit"],
}


def wall(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    for cmd in COMMANDS.values():  # warm the file cache
        wall(cmd)
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(args.repeats):
        for name, cmd in COMMANDS.items():
            times[name].append(wall(cmd))
    base = statistics.median(times["python -c pass"])
    print(f"{'command':<22} {'median s':>9} {'min s':>7} {'vs python -c pass':>18}")
    for name, values in times.items():
        med = statistics.median(values)
        print(f"{name:<22} {med:>9.3f} {min(values):>7.3f} {med / base:>17.1f}x")


if __name__ == "__main__":
    main()
