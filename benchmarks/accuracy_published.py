"""Predicted vs published llama-bench results on hardware we do not have.

Each row is a published llama-bench measurement with its source. The prediction
uses the catalog device and its default profile (no calibration to these numbers),
so the error is what a user gets out of the box. Run:

    python benchmarks/accuracy_published.py
"""

from __future__ import annotations

import statistics

from inferplan.api import build_deployment
from inferplan.perf.step_cost import StepCost

PR_3084 = "llama.cpp PR #3084 (2023-09-09), M2 Ultra, Metal, 'PR' column"
PR_2917 = "llama.cpp PR #2917 (2023-08-30), M2 Ultra, Metal, 'master' column"
PUBLISHED = [
    # model, device, weights, test, tokens/s, source
    ("llama-2-7b", "m2-ultra-192gb", "fp16", "pp512", 1265.30, PR_3084),
    ("llama-2-7b", "m2-ultra-192gb", "gguf-q8_0", "pp512", 1142.84, PR_3084),
    ("llama-2-7b", "m2-ultra-192gb", "gguf-q4_0", "pp512", 1164.00, PR_3084),
    ("llama-2-7b", "m2-ultra-192gb", "gguf-q8_0", "tg128", 62.05, PR_2917),
    ("llama-2-7b", "m2-ultra-192gb", "gguf-q4_0", "tg128", 88.54, PR_2917),
]


def predicted_tokens_per_s(model: str, device: str, weights: str, test: str) -> float:
    cost = StepCost(build_deployment(model, device, weights=weights, kv="bf16"))
    n = int(test[2:])
    if test.startswith("pp"):
        return n / cost.prefill_seconds(n, chunk=512)
    return n / sum(cost.decode_seconds(1, c) for c in range(n))


def main() -> None:
    errors = []
    print(f"{'model':12} {'device':16} {'weights':10} {'test':6} {'published':>10} {'predicted':>10} {'error':>7}")
    for model, device, weights, test, tps, source in PUBLISHED:
        pred = predicted_tokens_per_s(model, device, weights, test)
        err = 100 * (pred - tps) / tps
        errors.append(abs(err))
        print(f"{model:12} {device:16} {weights:10} {test:6} {tps:10.1f} {pred:10.1f} {err:+6.1f}%   {source}")
    print(f"median absolute error: {statistics.median(errors):.1f}% over {len(errors)} published results")


if __name__ == "__main__":
    main()
