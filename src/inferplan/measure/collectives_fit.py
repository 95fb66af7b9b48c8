"""Fit NCCL's all-reduce latency and bus bandwidth to measured timings by message size.

The measurements are Vidur's network profiles (``profiling/network/<gpu>_<topology>/all_reduce.csv``:
median milliseconds by message bytes and worker count). Per worker count, all in one node, a
least-squares line in relative error, ``t = latency + 2 (n-1)/n x bytes / bus``, gives the two
mechanism parameters; nothing is fitted per size.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from inferplan.errors import InputError
from inferplan.perf.collectives import NcclFit

# Vidur's profile folders and the catalog devices they measured: DGX = NVSwitch (SXM parts);
# pairwise NVLink = PCIe cards bridged in pairs
PROFILE_DEVICES: dict[str, tuple[str, ...]] = {
    "h100_dgx": ("h100-sxm", "h200"),
    "a100_dgx": ("a100-80gb", "a100-40gb"),
    "h100_pairwise_nvlink": ("h100-pcie",),
    "a100_pairwise_nvlink": ("a100-pcie-80gb", "a100-pcie-40gb"),
}
_COLUMNS = ("time_stats.all_reduce.median", "num_workers", "devices_per_node", "size")
SOURCE = ("fitted by `inferplan accuracy --fit` to microsoft/vidur data/profiling/network/{folder}/all_reduce.csv "
          "(commit 7d47513, MIT): median time by message size, all workers in one node")


@dataclass(frozen=True, slots=True)
class AllReducePoint:
    folder: str
    n: int
    size_bytes: int
    seconds: float


def read_allreduce_points(network_dir: Path) -> list[AllReducePoint]:
    """Every single-node all-reduce timing under ``network_dir``; a file with a missing column is an error."""
    points = []
    for folder in sorted(PROFILE_DEVICES):
        path = network_dir / folder / "all_reduce.csv"
        if not path.is_file():
            continue
        with path.open(newline="") as f:
            reader = csv.DictReader(f)
            missing = [c for c in _COLUMNS if c not in (reader.fieldnames or ())]
            if missing:
                raise InputError(f"{path}: missing column(s) {', '.join(missing)}; expected Vidur's all_reduce.csv "
                                 f"with {', '.join(_COLUMNS)}")
            for row in reader:
                if row["num_workers"] == row["devices_per_node"]:
                    points.append(AllReducePoint(folder, int(row["num_workers"]), int(float(row["size"])),
                                                 float(row["time_stats.all_reduce.median"]) * 1e-3))
    return points


def fit_nccl(points: list[AllReducePoint]) -> dict[str, NcclFit]:
    """One NcclFit per profile folder (named by its first device), plus "*" for devices without one:
    the median latency per worker count and the median bus efficiency of the fitted entries."""
    groups: dict[str, dict[int, list[AllReducePoint]]] = defaultdict(lambda: defaultdict(list))
    for p in points:
        groups[p.folder][p.n].append(p)
    fits: dict[str, NcclFit] = {}
    for folder, by_n in groups.items():
        latency, bus, errors = {}, {}, []
        for n, pts in sorted(by_n.items()):
            a, b, err = _fit_line(n, pts)
            latency[n], bus[n] = round(a * 1e6, 1), round(b / 1e9, 1)
            errors.append(err)
        devices = PROFILE_DEVICES[folder]
        fits[devices[0]] = NcclFit(applies_to=devices[1:], latency_us=latency, bus_gb_s=bus,
                                   median_error_pct=round(float(np.median(errors)) * 100, 1),
                                   source=SOURCE.format(folder=folder))
    if fits:
        fits["*"] = _generic(fits)
    return fits


def _fit_line(n: int, pts: list[AllReducePoint]) -> tuple[float, float, float]:
    """(latency s, bus bytes/s, median relative error) of ``t = a + wire / bus`` weighted by 1/t."""
    t = np.array([p.seconds for p in pts])
    wire = np.array([2 * (n - 1) / n * p.size_bytes for p in pts])
    design = np.stack([np.ones_like(wire), wire], axis=1) / t[:, None]
    (a, inv), *_ = np.linalg.lstsq(design, np.ones_like(t), rcond=None)
    a, inv = max(float(a), 0.0), max(float(inv), 1e-15)
    return a, 1.0 / inv, float(np.median(np.abs((a + wire * inv) / t - 1)))


def _generic(fits: dict[str, NcclFit]) -> NcclFit:
    from inferplan.specs.catalog import device_catalog  # noqa: PLC0415

    by_n: dict[int, list[float]] = defaultdict(list)
    effs = []
    for name, fit in fits.items():
        if name not in device_catalog():
            continue
        link = device_catalog()[name].tp_link_bytes_per_s()
        for n, us in fit.latency_us.items():
            by_n[n].append(us)
            effs.append(min(1.0, fit.bus_gb_s[n] * 1e9 / link))
    return NcclFit(latency_us={n: round(float(np.median(v)), 1) for n, v in sorted(by_n.items())},
                   bus_efficiency=round(float(np.median(effs)), 2),
                   source="devices without a measured profile: the median latency of the fitted entries by "
                          "worker count, and their median bus bandwidth as a fraction of the device's one-way link")


def collectives_yaml(fits: dict[str, NcclFit]) -> str:
    """The text of ``catalog/collectives.yaml`` for these fits."""
    import yaml  # noqa: PLC0415

    body = {"nccl_allreduce": {name: fit.model_dump(mode="json", exclude_defaults=True) | {"source": fit.source}
                               for name, fit in fits.items()}}
    return ("# NCCL all-reduce by device and worker count: latency (us) and bus bandwidth (GB/s), fitted to\n"
            "# measurements by `inferplan accuracy --fit --measurements DIR`; do not edit by hand.\n"
            + yaml.safe_dump(body, sort_keys=False, width=110))
