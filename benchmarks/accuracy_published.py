"""Predicted vs published llama-bench results on hardware we do not have: the never-fitted check set.

Replays ``measure/data/llamacpp_published.csv`` (sources and setups in ``measure/data/README.md``)
with the shipped profiles, through the same llama-bench replay `inferplan accuracy` uses, and prints
every row and the median absolute error per backend. Run:

    python benchmarks/accuracy_published.py
"""

from __future__ import annotations

import statistics

from inferplan.measure.accuracy import data_file
from inferplan.measure.llamacpp_cases import PUBLISHED_FILE, published_cases


def main() -> None:
    errors: dict[str, list[float]] = {}
    print(f"{'device':24} {'backend':7} {'row':58} {'published':>10} {'predicted':>10} {'error':>7}")
    for backend, c in published_cases(data_file(PUBLISHED_FILE)):
        err = 100 * (c.predicted / c.measured - 1)
        errors.setdefault(backend, []).append(abs(err))
        print(f"{c.device:24} {backend:7} {c.label:58} {c.measured:10.1f} {c.predicted:10.1f} {err:+6.1f}%")
    for backend, errs in sorted(errors.items()):
        print(f"{backend}: median absolute error {statistics.median(errs):.1f}% over {len(errs)} published results")


if __name__ == "__main__":
    main()
