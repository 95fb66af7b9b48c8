"""The workbench over a registry of 1,000 runs: time to first page, and each page's time to render.

Run: python benchmarks/ui_pages.py [--runs 1000] [--repeats 7] [--json]
A real simulation and a real plan are recorded first; the rest of the registry repeats their rows (as sims,
plans, fits, benches and validations over several devices) so searches and pages see 1,000 runs. Start-up is
`inferplan ui` as a fresh process until /runs answers, against `python -c pass` in the same run; each page is
fetched over HTTP from that server, the median of --repeats after one warm-up fetch.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from inferplan import api

DEVICES = ("h100-sxm", "a100-80gb", "l4", "l40s", "h200")


def seed(root: Path, total: int) -> dict[str, str]:
    """A registry of ``total`` runs under ``root``; the ids of one of each kind the pages open."""
    reg = api.Registry(root / "runs.sqlite")
    out = root / "inferplan-runs"
    sims = [api.run_simulation(api.SimulationConfig(workload="chat", rate=r, duration_s=60), out_dir=out,
                               registry=reg).run_id for r in (2, 4)]
    plan = api.run_plan(api.PlanRequest(workload="chat", rate=2, duration_s=60), out_dir=out, registry=reg).run_id
    rows = [reg.get(i) for i in (*sims, plan)]
    kinds = ("sim", "plan", "fit", "bench", "validate")
    for k in range(total - len(rows)):
        src = rows[k % len(rows)]
        kind = kinds[k % len(kinds)] if k % 3 else src.kind
        inputs = src.inputs | {"device": DEVICES[k % len(DEVICES)], "seed": k}
        reg.add(f"{kind}-bench-{k:05d}", kind, f"{src.label} #{k}", inputs, src.summary,
                Path(src.out_dir) if src.out_dir else None, Path(src.report) if src.report else None)
    return {"sim": sims[0], "sim2": sims[1], "plan": plan}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(registry: Path) -> tuple[subprocess.Popen[bytes], str, float]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "inferplan.cli", "ui", "--registry", str(registry), "--port",
                             str(port), "--no-browser"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while True:
        try:
            if httpx.get(base + "/runs", timeout=5).status_code == 200:  # noqa: PLR2004
                return proc, base, time.perf_counter() - t0
        except httpx.TransportError:
            time.sleep(0.01)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ids = seed(Path(tmp), args.runs)
        pages = {"runs": "/runs", "runs, filtered": "/runs?kind=sim&device=l4&q=chat", "runs, page 10": "/runs?page=10",
                 "a simulation": f"/runs/{ids['sim']}", "a plan": f"/runs/{ids['plan']}",
                 "compare two runs": f"/compare?ids={ids['sim']}&ids={ids['sim2']}", "fit": "/fit",
                 "fit result": "/fit/result?model=llama-3.1-70b&device=h100-sxm&tp=4", "simulate form": "/simulate",
                 "plan form": "/plan", "jobs": "/jobs"}
        bare, starts = [], []
        for _ in range(3):
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-c", "pass"], check=True)
            bare.append(time.perf_counter() - t0)
            proc, base, took = start(Path(tmp) / "runs.sqlite")
            starts.append(took)
            if len(starts) < 3:  # noqa: PLR2004
                proc.terminate()
                proc.wait(30)
        timings = {}
        with httpx.Client(base_url=base, timeout=30) as c:
            for name, url in pages.items():
                assert c.get(url).status_code == 200, url  # noqa: PLR2004
                runs = []
                for _ in range(args.repeats):
                    t0 = time.perf_counter()
                    c.get(url)
                    runs.append(time.perf_counter() - t0)
                timings[name] = statistics.median(runs)
        proc.terminate()
        proc.wait(30)
    result = {"registry_runs": args.runs, "startup_s": statistics.median(starts), "python_s": statistics.median(bare),
              "pages_s": timings}
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"registry of {args.runs:,} runs")
    print(f"start-up to the first page: {result['startup_s']:.2f} s (bare python {result['python_s']:.3f} s)")
    for name, s in timings.items():
        print(f"  {name:<18} {s * 1e3:7.1f} ms")


if __name__ == "__main__":
    main()
