"""Form fields to typed inputs, with the CLI's own validators, before any work is started.

Every error names the field, what was expected and what was given (shown in the page, HTTP 400). A model,
device or workload is a catalog name or an upload reference; a request never names a file by its path.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from inferplan import api
from inferplan.api import InputError
from inferplan.ui.uploads import Uploads


class FormError(InputError):
    """A field of a form that cannot be read."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"{name}: {message}")
        self.field = name


Form = Mapping[str, str]


def text(form: Form, name: str, default: str = "") -> str:
    return (form.get(name) or default).strip()


def optional_number(form: Form, name: str, *, integer: bool = False, low: float = 0.0) -> float | None:
    raw = text(form, name)
    if not raw:
        return None
    try:
        value = int(raw) if integer else float(raw)
    except ValueError:
        raise FormError(name, f"expected {'a whole number' if integer else 'a number'}, got '{raw}'") from None
    if not value >= low or value != value:
        raise FormError(name, f"expected at least {low:g}, got '{raw}'")
    return value


def whole(form: Form, name: str, default: int, low: int = 1) -> int:
    value = optional_number(form, name, integer=True, low=low)
    return default if value is None else int(value)


def model_ref(form: Form, uploads: Uploads) -> str:
    """A catalog model, or the path of an uploaded config.json (parsed by the same loader as the CLI's)."""
    name = text(form, "model", "llama-3.1-8b")
    if name.startswith("upload:"):
        return str(uploads.path(name))
    if name.lower() not in api.model_catalog():
        raise FormError("model", f"'{name}' is not in the catalog; pick one from the list or upload a config.json")
    return name


def device_name(name: str, field: str = "device") -> str:
    if name.lower() not in api.device_catalog():
        raise FormError(field, f"'{name}' is not a catalog device (see `inferplan devices`)")
    return name.lower()


def workload_ref(form: Form, uploads: Uploads) -> str:
    name = text(form, "workload", "chat")
    if name.startswith("upload:"):
        return str(uploads.path(name))
    if name not in api.workload_names():
        raise FormError("workload", f"'{name}' is not a preset ({', '.join(api.workload_names())}); or upload a "
                        "trace (.csv, .jsonl)")
    return name


POLICIES = ("vllm", "sglang", "trtllm", "sarathi", "orca", "static", "llamacpp")  # the simulator's schedulers
SPEC_METHODS = ("eagle3", "eagle", "mtp", "ngram")  # the drafters that need no second model named


def choice(form: Form, name: str, allowed: tuple[str, ...], default: str) -> str:
    value = text(form, name, default)
    if value not in allowed:
        raise FormError(name, f"expected one of {', '.join(allowed)}, got '{value}'")
    return value


def checked(form: Form, name: str) -> bool:
    return text(form, name) in ("on", "true", "1", "yes")


def slo_text(form: Form, default: str = "") -> str | None:
    raw = text(form, "slo", default)
    try:
        api.parse_slos(raw)
    except InputError as exc:
        raise FormError("slo", str(exc)) from None
    return raw or None


@dataclass(frozen=True, slots=True)
class FitInputs:
    model: str
    device: str
    weights: str | None
    kv: str
    tp: int
    context: int

    def deployment(self) -> api.Deployment:
        """The replica these inputs name, resolved as the CLI's `fit` resolves it."""
        return api.build_deployment(self.model, self.device, weights=self.weights, kv=self.kv, tp=self.tp)

    def record_inputs(self) -> dict[str, object]:
        return {"model": self.model, "device": self.device, "weights": self.weights, "kv": self.kv, "tp": self.tp,
                "context": self.context}


def fit_inputs(form: Form, uploads: Uploads) -> FitInputs:
    weights = text(form, "weights") or None
    if weights is not None and weights not in api.weight_format_catalog():
        raise FormError("weights", f"'{weights}' is not a weight format ({', '.join(api.weight_format_catalog())})")
    kv = text(form, "kv", "bf16")
    if kv not in api.kv_format_catalog():
        raise FormError("kv", f"'{kv}' is not a KV cache format ({', '.join(api.kv_format_catalog())})")
    return FitInputs(model=model_ref(form, uploads), device=device_name(text(form, "device", "h100-sxm")),
                     weights=weights, kv=kv, tp=whole(form, "tp", 1), context=whole(form, "context", 8192))


def simulation_config(form: Form, uploads: Uploads) -> api.SimulationConfig:
    """The simulate form as a ``SimulationConfig``, checked as the CLI checks it (deployment, workload, SLOs)."""
    engine = text(form, "engine") or None
    cfg = api.SimulationConfig(
        model=model_ref(form, uploads), device=device_name(text(form, "device", "h100-sxm")),
        weights=text(form, "weights") or None, kv=text(form, "kv", "bf16"), tp=whole(form, "tp", 1),
        replicas=whole(form, "replicas", 1), engine=engine, router=text(form, "router", "round-robin"),
        workload=workload_ref(form, uploads), rate=optional_number(form, "rate"),
        duration_s=optional_number(form, "duration"),
        num_requests=_int_or_none(optional_number(form, "num_requests", integer=True, low=1)),
        seed=whole(form, "seed", 0, low=0), slo=slo_text(form),
        max_num_seqs=_int_or_none(optional_number(form, "max_num_seqs", integer=True, low=1)),
        max_num_batched_tokens=_int_or_none(optional_number(form, "max_num_batched_tokens", integer=True, low=1)),
        gpu_memory_utilization=optional_number(form, "gpu_memory_utilization", low=1e-9),
        policy=choice(form, "policy", ("", *POLICIES), "") or None,
        enable_prefix_caching=checked(form, "prefix_caching"), prefill_replicas=whole(form, "prefill_replicas", 0, 0),
        spec=choice(form, "spec", ("", *SPEC_METHODS), "") or None,
        spec_tokens=_int_or_none(optional_number(form, "spec_tokens", integer=True, low=1)))
    cfg.deployment()
    cfg.build_workload()
    return cfg


def plan_request(form: Form, devices: list[str], uploads: Uploads) -> api.PlanRequest:
    """The plan form as a ``PlanRequest``; its names and SLOs are checked before a worker starts."""
    chosen = tuple(device_name(d, "devices") for d in devices if d.strip())
    if not chosen:
        raise FormError("devices", "pick at least one device type")
    engines = tuple(e for e in text(form, "engines").replace(" ", "").split(",") if e)
    unknown = [e for e in engines if e not in api.engine_catalog()]
    if unknown:
        raise FormError("engines", f"unknown engine {', '.join(unknown)} (one of {', '.join(api.engine_catalog())})")
    objective = choice(form, "objective", ("cost", "energy", "cost+energy"), "cost")
    executor = choice(form, "executor", ("local", "serial"), "local")
    confidence = optional_number(form, "confidence")
    if confidence is not None and not 0 < confidence < 1:
        raise FormError("confidence", f"expected a probability between 0 and 1 (e.g. 0.9), got '{confidence:g}'")
    window = optional_number(form, "autoscale_window", low=1e-9)  # minutes; None: one static fleet
    workload, duration = workload_ref(form, uploads), optional_number(form, "duration")
    if window is not None and duration is None and workload in api.workload_names():
        duration = 4 * 60 * window  # as the CLI does: a preset is simulated for four windows
    req = api.PlanRequest(
        model=model_ref(form, uploads), workload=workload, rate=optional_number(form, "rate"),
        duration_s=duration, seed=whole(form, "seed", 0, low=0),
        autoscale_window_s=None if window is None else 60 * window,
        scale_down_delay_s=60 * _or(optional_number(form, "scale_down_delay"), 5.0),
        slo=slo_text(form, api.DEFAULT_SLO) or api.DEFAULT_SLO, devices=chosen, engines=engines,
        max_quality_loss_pct=_or(optional_number(form, "max_quality_loss"), 1.0), objective=objective,
        power_budget_w=optional_number(form, "power_budget", low=1e-9), executor=executor, confidence=confidence,
        disaggregation=choice(form, "disaggregation", ("off", "on", "auto"), "off"),
        spec=choice(form, "spec", ("off", "auto", *SPEC_METHODS), "off"),
        allow_unknown_quality=checked(form, "allow_unknown_quality"))
    req.build_workload()
    return req


def _or(x: float | None, default: float) -> float:
    return default if x is None else x


def _int_or_none(x: float | None) -> int | None:
    return None if x is None else int(x)
