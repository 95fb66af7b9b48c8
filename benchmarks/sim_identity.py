"""Are this checkout's simulations bit-identical to another checkout's? Their results, hashed.

Run: python benchmarks/sim_identity.py OTHER_SRC

OTHER_SRC is the ``src`` directory of another checkout (for example a ``git worktree`` of an older
commit). Each side runs the same scenarios in its own process (chat; Sarathi; disaggregated;
prefix caching; sliding-window Gemma on two least-KV replicas; three round-robin replicas) and
hashes every per-request array, every replica's time series and totals, and the summary, each
apart; the script prints both hashes per scenario, names the parts that differ, and exits 1 if
any do. A refactor that claims "behaviour does not change" runs this.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

THIS_SRC = Path(__file__).resolve().parents[1] / "src"  # this checkout, not the installed package
PARTS = ("requests", "replica series and totals", "summary")

SCENARIOS: list[dict[str, object]] = [
    {"workload": "chat", "rate": 8.0, "duration_s": 120},
    {"workload": "chat", "rate": 6.0, "duration_s": 120, "policy": "sarathi"},
    {"workload": "chat", "rate": 6.0, "duration_s": 120, "prefill_replicas": 1, "replicas": 1},
    {"workload": "chat", "rate": 6.0, "duration_s": 120, "enable_prefix_caching": True},
    {"model": "gemma-2-9b", "device": "a100-80gb", "workload": "chat", "rate": 5.0, "duration_s": 120,
     "replicas": 2, "router": "least-kv"},
    {"workload": "chat", "rate": 10.0, "duration_s": 120, "replicas": 3, "device": "a10g"},
]

_HASH = """
import hashlib, json, sys
import numpy as np
from inferplan.runs import SimulationConfig, simulate_config
out = []
for kw in json.loads(sys.argv[1]):
    res, summary = simulate_config(SimulationConfig(**kw))
    summary = summary if isinstance(summary, dict) else summary.to_json()
    table = res.table
    requests, replicas, whole = hashlib.sha256(), hashlib.sha256(), hashlib.sha256()
    for name in sorted(vars(table)):
        value = getattr(table, name)
        if isinstance(value, np.ndarray):
            requests.update(name.encode()); requests.update(np.ascontiguousarray(value).tobytes())
    for rep in res.replicas:  # each replica's time series and totals
        for name, arr in sorted(rep.series.as_arrays().items()):
            replicas.update(name.encode()); replicas.update(np.ascontiguousarray(arr).tobytes())
        replicas.update(repr((rep.busy_s, rep.energy_j, rep.num_steps, rep.max_kv_blocks_used)).encode())
    whole.update(repr((res.itl.n, res.itl.total, res.num_steps, res.makespan_s)).encode())
    whole.update(json.dumps(summary, sort_keys=True, default=str).encode())
    out.append(".".join(h.hexdigest()[:8] for h in (requests, replicas, whole)))
print(json.dumps(out))
"""


def hashes(src: str) -> list[str]:
    """The scenarios' hashes with the ``inferplan`` package under ``src`` (first on the path, whatever
    is installed)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    run = subprocess.run([sys.executable, "-c", _HASH, json.dumps(SCENARIOS)], capture_output=True, text=True,
                         env=env, check=True)
    return list(json.loads(run.stdout.splitlines()[-1]))


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    other, this = hashes(sys.argv[1]), hashes(str(THIS_SRC))
    for kw, a, b in zip(SCENARIOS, other, this, strict=True):
        parts = [name for name, x, y in zip(PARTS, a.split("."), b.split("."), strict=True) if x != y]
        print(f"{'same' if a == b else 'DIFFERENT':<9} other {a}  this {b}  {kw}"
              + (f"  (differ: {', '.join(parts)})" if parts else ""))
    sys.exit(0 if other == this else 1)


if __name__ == "__main__":
    main()
