"""Synthetic workloads: arrival processes x length distributions, all from one seeded Generator."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from inferplan.errors import InputError
from inferplan.workload.request import F64, I64, Workload

Rng = np.random.Generator


# ---- arrival processes -----------------------------------------------------------------
def poisson_arrivals(rng: Rng, rate: float, n: int) -> F64:
    """Exponential gaps: the memoryless baseline (coefficient of variation 1)."""
    return np.cumsum(rng.exponential(1.0 / rate, n))


def gamma_arrivals(rng: Rng, rate: float, n: int, cv: float) -> F64:
    """Gamma gaps with mean 1/rate and the given coefficient of variation (cv > 1 is burstier)."""
    shape = 1.0 / (cv * cv)
    return np.cumsum(rng.gamma(shape, 1.0 / (rate * shape), n))


def onoff_arrivals(rng: Rng, rate: float, n: int, on_s: float, off_s: float) -> F64:
    """Poisson bursts during 'on' periods, silence during 'off'; ``rate`` is the long-run mean."""
    on_rate = rate * (on_s + off_s) / on_s
    busy = np.cumsum(rng.exponential(1.0 / on_rate, n))  # time measured in 'on' seconds
    periods = np.floor(busy / on_s)
    return busy + periods * off_s


def diurnal_arrivals(rng: Rng, rate: float, n: int, period_s: float = 86_400.0, amplitude: float = 0.6) -> F64:
    """Non-homogeneous Poisson with rate(t) = rate x (1 + a sin(2 pi t / period)), by thinning."""
    if not 0 <= amplitude < 1:
        raise InputError(f"diurnal amplitude must be in [0, 1), got {amplitude}")
    peak = rate * (1 + amplitude)
    out: list[F64] = []
    t, have = 0.0, 0
    while have < n:
        gaps = rng.exponential(1.0 / peak, 2 * (n - have) + 16)
        cand = t + np.cumsum(gaps)
        keep = rng.random(cand.shape[0]) < (1 + amplitude * np.sin(2 * np.pi * cand / period_s)) / (1 + amplitude)
        out.append(cand[keep])
        have += int(keep.sum())
        t = float(cand[-1])
    return np.concatenate(out)[:n]


# ---- length distributions ----------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Lengths:
    """A token-length distribution, clipped to [low, high]."""

    kind: str  # fixed | uniform | lognormal | empirical
    a: float = 0.0
    b: float = 0.0
    low: int = 1
    high: int = 1_000_000
    values: tuple[int, ...] = ()

    def sample(self, rng: Rng, n: int) -> I64:
        if self.kind == "fixed":
            x = np.full(n, self.a)
        elif self.kind == "uniform":
            x = rng.integers(int(self.a), int(self.b) + 1, n)
        elif self.kind == "lognormal":
            x = rng.lognormal(self.a, self.b, n)
        elif self.kind == "empirical":
            x = rng.choice(np.asarray(self.values), n, replace=True)
        else:
            raise InputError(f"unknown length distribution '{self.kind}' (fixed, uniform, lognormal, empirical)")
        out: I64 = np.clip(np.rint(x), self.low, self.high).astype(np.int64)
        return out


ArrivalFn = Callable[[Rng, float, int], F64]


def synthesize(
    rng: Rng,
    *,
    n: int,
    rate: float,
    inputs: Lengths,
    outputs: Lengths,
    arrivals: str = "poisson",
    cv: float = 2.0,
    name: str = "synthetic",
    online: bool = True,
    priority: int = 0,
    period_s: float = 86_400.0,
) -> Workload:
    """n requests at a mean ``rate`` per second (``period_s``: length of one diurnal cycle)."""
    if rate <= 0 or not np.isfinite(rate):
        raise InputError(f"--rate must be a positive number of requests per second, got {rate}")
    if n < 1:
        raise InputError(f"the workload needs at least 1 request, got {n}")
    processes: dict[str, ArrivalFn] = {
        "poisson": poisson_arrivals,
        "gamma": lambda r, lam, k: gamma_arrivals(r, lam, k, cv),
        "onoff": lambda r, lam, k: onoff_arrivals(r, lam, k, on_s=30.0, off_s=30.0),
        "diurnal": lambda r, lam, k: diurnal_arrivals(r, lam, k, period_s=period_s),
        "burst": lambda r, lam, k: np.zeros(k),
    }
    if arrivals not in processes:
        raise InputError(f"unknown arrival process '{arrivals}'; choose one of {', '.join(processes)}")
    t = processes[arrivals](rng, rate, n)
    return Workload.build(
        t,
        inputs.sample(rng, n),
        outputs.sample(rng, n),
        online=np.full(n, online),
        priority=np.full(n, priority),
        name=name,
        source=f"synthetic ({arrivals}, rate {rate:g}/s)",
    )
