"""Apple's GPU wired-memory limit: how much of a Mac's unified memory the GPU may hold.

macOS lets Metal keep its recommended working set resident (``recommendedMaxWorkingSetSize``: about
2/3 of memory on Macs up to 36 GB, 3/4 above; the catalog's ``usable_memory_fraction``); ``sudo sysctl
iogpu.wired_limit_mb=N`` raises it until the next reboot, and MLX and llama.cpp users do so to load larger
models. ``--wired-limit GIB`` plans with the limit a user has set.
"""

from __future__ import annotations

from inferplan.errors import InputError
from inferplan.specs.hardware import DeviceSpec

# what a suggested limit leaves to macOS and its apps: a planning margin of ours, not a macOS rule
MACOS_KEEPS_GIB = 4.0


def wired(dev: DeviceSpec, gib: float | None) -> DeviceSpec:
    """The device with a GPU wired limit of ``gib`` (None: macOS's default)."""
    if gib is None:
        return dev
    if dev.kind != "apple-soc":
        raise InputError(f"--wired-limit is macOS's GPU memory limit (iogpu.wired_limit_mb); {dev.name} is a "
                         f"{dev.kind}, not an Apple chip: leave --wired-limit out")
    if not 0 < gib <= dev.memory_gib:
        raise InputError(f"--wired-limit {gib:g} GiB must be above 0 and at most {dev.name}'s "
                         f"{dev.memory_gib:g} GiB of memory (leave macOS 4 GiB or more for itself)")
    return dev.model_copy(update={"usable_memory_fraction": gib / dev.memory_gib})


def sysctl_value_mb(gib: float) -> int:
    """The ``iogpu.wired_limit_mb`` value for a limit of ``gib``."""
    return round(gib * 1024)
