"""The reality loop on this machine: a real server, `bench`, `simulate`, `compare`, `calibrate`, `compare` again.

Starts `transformers serve` (continuous batching) on loopback with a small Llama-shaped
model written locally, replays a chat workload against it, simulates the same requests
(the bench's requests.csv as the trace) on the profiled `local` device, compares, then
calibrates the profile to the bench run and simulates again. Needs `inferplan profile`
to have run (or INFERPLAN_PROFILE pointing at a profile). Run:

    python benchmarks/bench_vs_sim.py [--rate 0.5] [--requests 40]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from inferplan.measure.local_server import transformers_server
from inferplan.measure.tiny import write_tiny_model

CLI = [sys.executable, "-m", "inferplan.cli"]


def cli(*args: str) -> dict[str, object]:
    r = subprocess.run([*CLI, *args, "--json"], capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"inferplan {' '.join(args)} failed: {r.stderr}")
    out: dict[str, object] = json.loads(r.stdout)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", type=float, default=0.5)
    ap.add_argument("--requests", type=int, default=40)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--hidden", type=int, default=512)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        model = write_tiny_model(Path(tmp) / "model", layers=args.layers, hidden=args.hidden, heads=8, kv_heads=4,
                                 intermediate=4 * args.hidden)
        bench_args = ["--workload", "chat", "--num-requests", str(args.requests), "--max-input-tokens", "512",
                      "--max-output-tokens", "64"]
        with transformers_server(model) as url:
            bench = cli("bench", url, *bench_args, "--rate", str(args.rate))
            # a second run, held out from calibration: other requests, 1.5x the rate
            held_out = cli("bench", url, *bench_args, "--rate", str(1.5 * args.rate), "--seed", "1")

        def sim_args(run: dict[str, object]) -> list[str]:
            return [str(model / "config.json"), "--device", "local", "--weights", "fp32", "--kv", "fp32",
                    "--workload", str(Path(str(run["out_dir"])) / "requests.csv")]

        sim = cli("simulate", *sim_args(bench))
        before = cli("compare", str(bench["run_id"]), str(sim["run_id"]))
        cal_path = Path(tmp) / "calibrated.yaml"
        cal = cli("calibrate", "--from", str(bench["run_id"]), "--model", str(model / "config.json"),
                  "--weights", "fp32", "--kv", "fp32", "--device", "local", "--out", str(cal_path))
        sim2 = cli("simulate", *sim_args(bench), "--profile", str(cal_path))
        after = cli("compare", str(bench["run_id"]), str(sim2["run_id"]))
        sim3 = cli("simulate", *sim_args(held_out), "--profile", str(cal_path))
        held = cli("compare", str(held_out["run_id"]), str(sim3["run_id"]))
    print(f"bench {bench['run_id']}: {bench['num_finished']}/{bench['num_requests']} finished")
    print(f"{'metric':34} {'measured':>10} {'simulated':>10} {'error':>8} {'calibrated':>10} {'error':>8}")
    rows_after = {r["metric"]: r for r in after["metrics"]}  # type: ignore[index]
    for r in before["metrics"]:  # type: ignore[attr-defined]
        if r["b"] is None or r["a"] is None or r["metric"] not in rows_after:
            continue
        a = rows_after[r["metric"]]
        pct = "-" if r["change_pct"] is None else f"{r['change_pct']:+.1f}%"
        pct2 = "-" if a["change_pct"] is None else f"{a['change_pct']:+.1f}%"
        print(f"{r['metric']:34} {r['a']:10.4g} {r['b']:10.4g} {pct:>8} {a['b']:10.4g} {pct2:>8}")
    print(f"calibration factors: {cal['factors']}")
    print(f"held-out run {held_out['run_id']} at {1.5 * args.rate:g} req/s, simulated with the calibrated profile:")
    for r in held["metrics"]:  # type: ignore[attr-defined]
        if r["change_pct"] is not None and r["metric"].split(".")[0] in ("ttft_s", "tpot_s", "e2e_s",
                                                                         "throughput_output_tokens_per_s"):
            print(f"  {r['metric']:32} measured {r['a']:8.4g}  simulated {r['b']:8.4g}  {r['change_pct']:+6.1f}%")


if __name__ == "__main__":
    main()
