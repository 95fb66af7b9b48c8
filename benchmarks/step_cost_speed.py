"""How long one StepCost call takes, against a per-layer, per-operator baseline in the same run.

Run: python benchmarks/step_cost_speed.py
The baseline prices the same batch by walking every layer's operators (the
obvious implementation); StepCost precomputes per-group coefficients and prices
a BatchShape in O(1). Both give the same dense-linear time.
"""

from __future__ import annotations

import time

import numpy as np

from inferplan.api import build_deployment
from inferplan.perf.step_cost import StepCost, batch_shape


def per_operator_baseline(cost: StepCost, tokens: int) -> float:
    """Roofline per operator per layer (dense linears only), the way a naive predictor would."""
    dep = cost.dep
    eff = tokens / (tokens + cost.half_tokens)
    total = 0.0
    for layer in range(dep.model.num_layers):
        for op in dep.model.layer_ops(layer):
            if op.num_experts > 1:
                continue
            flops = 2 * op.active_params * tokens / dep.tp
            nbytes = op.params * dep.weights.bytes_per_weight / dep.tp
            total += max(flops / (cost.linear_flops_per_s * eff), nbytes / cost.bw)
    return total


def main() -> None:
    rng = np.random.default_rng(0)
    cost = StepCost(build_deployment("llama-3.1-8b", "h100-sxm"))
    shapes = []
    for _ in range(2000):
        decodes = rng.integers(1, 4096, size=int(rng.integers(1, 256))).tolist()
        prefills = [(int(rng.integers(1, 2048)), int(rng.integers(0, 2048)))] if rng.random() < 0.3 else []
        shapes.append(batch_shape(prefills, decodes))
    n_calls = 200_000
    t0 = time.perf_counter()
    for i in range(n_calls):
        cost.seconds(shapes[i % len(shapes)])
    fast_us = (time.perf_counter() - t0) / n_calls * 1e6
    n_base = 2000
    t0 = time.perf_counter()
    for i in range(n_base):
        per_operator_baseline(cost, shapes[i].num_tokens)
    base_us = (time.perf_counter() - t0) / n_base * 1e6
    print(f"StepCost.seconds: {fast_us:.2f} us/call over {n_calls:,} calls")
    print(f"per-operator baseline: {base_us:.1f} us/call over {n_base:,} calls")
    print(f"ratio: {base_us / fast_us:.0f}x faster")


if __name__ == "__main__":
    main()
