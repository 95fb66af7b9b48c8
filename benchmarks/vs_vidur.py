"""inferplan against Vidur 0.0.26 on the same trace and model, whole process each, in one run.

Run: python benchmarks/vs_vidur.py [--requests N] [--qps Q] [--pairs K]

Needs the Vidur peer beside the checkout (``../shared/peers/vidur``: ``setup.sh`` once, then a
first ``vidur_bench.sh`` run trains its predictors, 25-30 minutes on 2 cores); without it the
script says so and exits 0. Both simulate the Azure LLM 2023 conversation trace's lengths on one
A100 with Llama-3-8B under a vLLM scheduler (128 sequences, 4,096 tokens per step) at Q req/s:
Vidur with Poisson arrivals (its generator), inferplan with the trace's own arrival pattern
rescaled to Q (``simulate --rate``). Runs alternate (Vidur, inferplan, ...) and the ratio of the
whole-process wall times is printed per pair, so the host's drift affects both sides alike.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PEER = ROOT.parent / "shared" / "peers" / "vidur"
TRACE = ROOT.parent / "shared" / "data" / "traces" / "azure_llm_2023_conv.csv"


def vidur(requests: int, qps: float) -> float:
    """Vidur's whole-process wall time, as its bench script reports it (last line: ``wall_s=X``)."""
    env = dict(os.environ, N=str(requests), QPS=str(qps), BATCH_CAP="128", MAX_TOKENS_IN_BATCH="4096")
    out = subprocess.run(["bash", str(PEER / "vidur_bench.sh")], env=env, capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1].rsplit("wall_s=", 1)[1])


def inferplan(requests: int, qps: float) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "inferplan.cli", "simulate", "llama-3.1-8b", "--device", "a100-80gb",
               "--workload", str(TRACE), "--num-requests", str(requests), "--rate", str(qps),
               "--max-num-seqs", "128", "--max-num-batched-tokens", "4096", "--json",
               "--registry", f"{tmp}/runs.sqlite", "--out", f"{tmp}/out"]
        t0 = time.perf_counter()
        subprocess.run(cmd, capture_output=True, check=True, env=dict(os.environ, PYTHONPATH=str(ROOT / "src")))
        return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=19_365)
    ap.add_argument("--qps", type=float, default=5.3)
    ap.add_argument("--pairs", type=int, default=1)
    args = ap.parse_args()
    if not (PEER / "vidur_bench.sh").is_file() or not TRACE.is_file():
        print(f"skipped: no Vidur peer at {PEER.name}/ or no trace beside the checkout")
        return
    for k in range(args.pairs):
        v, i = vidur(args.requests, args.qps), inferplan(args.requests, args.qps)
        print(f"pair {k + 1}: Vidur {v:.1f} s, inferplan {i:.2f} s whole process: {v / i:.1f}x")


if __name__ == "__main__":
    main()
