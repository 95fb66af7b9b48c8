"""Names (or file paths, or specs already loaded) into a validated Deployment: the one place that does it.

Every edge that turns user input into a replica (``fit``, ``simulate``, ``plan``'s inputs,
``validate``, ``calibrate``, the public API) calls ``resolve_deployment``, so a name is
resolved the same way everywhere. It sits here rather than in ``api`` because ``runs``
and ``measure``, below the API, need it too.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from inferplan.errors import InputError
from inferplan.perf.deployment import Deployment, EngineLimits, LimitValue, engine_limits
from inferplan.perf.power import capped
from inferplan.perf.profile import DeviceProfile
from inferplan.perf.wired_limit import wired
from inferplan.specs.catalog import (
    engine_for,
    get_device,
    get_engine,
    get_kv_format,
    get_model,
    get_spec_method,
    weight_format_for,
)
from inferplan.specs.hardware import DeviceSpec
from inferplan.specs.kv_eviction import KVBudget
from inferplan.specs.model import ModelSpec
from inferplan.specs.speculation import Speculation, load_measured_rates


def resolve_deployment(
    model: str | ModelSpec,
    device: str | DeviceSpec,
    *,
    weights: str | None = None,
    kv: str = "bf16",
    tp: int = 1,
    pp: int = 1,
    ep: bool = False,
    dp_attention: bool = False,
    limits: EngineLimits | Mapping[str, LimitValue] | None = None,
    profile: Path | DeviceProfile | None = None,
    engine: str | None = None,
    speculation: Speculation | None = None,
    kv_budget: str | KVBudget | None = None,
    power_cap_w: float | None = None,
    wired_limit_gib: float | None = None,
) -> Deployment:
    """A Deployment of ``model`` on ``device``; names go through the catalogs (or model and device files).

    ``weights`` None: the checkpoint's own format (a quantized config.json), else bf16. ``profile``: a
    profile file or a loaded profile; ``device`` ``local`` then means the device the profile measured.
    ``engine`` None: the device's default engine, or the one that loads the weights (``engine_for``).
    ``limits``: complete limits, or the values the user gave (None for any left out), which the engine's
    own defaults complete (``engine_limits``). ``power_cap_w``: a power limit per device (``perf/power.py``);
    ``wired_limit_gib``: a Mac's GPU wired-memory limit (``perf/wired_limit.py``).
    """
    prof = DeviceProfile.load(profile) if isinstance(profile, Path) else profile
    if isinstance(device, DeviceSpec):
        dev = device
    else:
        dev = (prof.resolve_device(device) if prof else None) or get_device(device)
    dev = wired(capped(dev, power_cap_w), wired_limit_gib)
    spec = model if isinstance(model, ModelSpec) else get_model(model)
    fmt = weight_format_for(spec, weights)
    chosen = get_engine(engine) if engine else None
    if not isinstance(limits, EngineLimits):
        limits = engine_limits(chosen or engine_for(dev, fmt), limits)
    return Deployment(
        model=spec,
        device=dev,
        weights=fmt,
        kv=get_kv_format(kv),
        tp=tp,
        pp=pp,
        ep=ep,
        dp_attention=dp_attention,
        limits=limits,
        profile=prof,
        engine=chosen,
        speculation=speculation,
        kv_budget=KVBudget.parse(kv_budget) if isinstance(kv_budget, str) else kv_budget,
    )


def resolve_speculation(method: str | None, *, k: int | None = None, acceptance: str | float | None = None,
                        draft: str | None = None, spread: float | None = None,
                        seed: int = 0) -> Speculation | None:
    """A replica's speculative decoding from names (None: off). ``acceptance``: a per-token rate, or a file of
    measured per-request rates (default: the method's cited figure); ``k`` default: the method's."""
    if method is None or method == "off":
        if k is not None or acceptance is not None or draft is not None:
            raise InputError("--spec-tokens, --spec-acceptance and --spec-draft need --spec METHOD")
        return None
    m = get_spec_method(method)
    measured: tuple[float, ...] = ()
    rate = m.acceptance
    if isinstance(acceptance, str) and not _is_number(acceptance):
        measured = load_measured_rates(Path(acceptance))
        rate = sum(measured) / len(measured)
    elif acceptance is not None:
        rate = float(acceptance)
    if spread is None:  # the method's spread, narrowed where a rate near 0 or 1 leaves no room for it
        spread = min(m.acceptance_spread, 0.5 * (rate * (1.0 - rate)) ** 0.5) if 0.0 <= rate <= 1.0 else 0.0
    return Speculation(method=m, k=k if k is not None else m.default_k, acceptance=rate,
                       acceptance_spread=spread, measured=measured,
                       draft=get_model(draft) if draft else None, seed=seed)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
