"""Power caps: a device held under a power limit runs its compute at a lower clock; memory keeps its speed.

Dynamic power of CMOS logic is ``C V^2 f`` and voltage falls with the clock under DVFS, so at full load
it grows about as the cube of the clock: a cap leaves the clock at
``((cap - idle) / (peak - idle)) ** (1/3)`` of its peak (never below ``MIN_CLOCK``). A power cap lowers
the graphics (SM) clock, not the memory clock, so compute-bound work (prefill, large batches) slows with
it and memory-bound work (decode) hardly at all: why POLCA (P168) finds inference leaves room to
oversubscribe a cluster's power with little performance loss. StepCost scales the compute rates by the
ratio and holds the busy power to the cap; the energy a step takes follows from both.
"""

from __future__ import annotations

from inferplan.errors import InputError
from inferplan.specs.hardware import DeviceSpec

MIN_CLOCK = 0.2  # a GPU's lowest sustained graphics clock is 15-25% of its boost clock (H100: 345 of 1980 MHz)


def clock_ratio(dev: DeviceSpec) -> float:
    """The share of its peak compute clock the device runs at under its power cap (1.0: no cap)."""
    cap = dev.power_cap_w
    if cap is None or cap >= dev.peak_power_w or dev.peak_power_w <= dev.idle_power_w:
        return 1.0
    return max(float(((cap - dev.idle_power_w) / (dev.peak_power_w - dev.idle_power_w)) ** (1 / 3)), MIN_CLOCK)


def capped(dev: DeviceSpec, watts: float | None) -> DeviceSpec:
    """The device with a power cap of ``watts`` per device (None: as it is)."""
    if watts is None:
        return dev
    if not watts > dev.idle_power_w:
        raise InputError(f"--power-cap {watts:g} W is at or below {dev.name}'s idle power ({dev.idle_power_w:g} W); "
                         f"its peak is {dev.peak_power_w:g} W")
    return dev.model_copy(update={"power_cap_w": float(watts)})


def busy_power_w(dev: DeviceSpec) -> float:
    """Power while kernels run: the peak, or the cap below it."""
    return min(dev.peak_power_w, dev.power_cap_w or dev.peak_power_w)
