"""Time real Hugging Face models on this machine and compare with what StepCost predicts.

The model is built from its config.json with random weights (timing does not
depend on the values) or loaded from a local checkpoint. Decode steps run on a
preallocated KV cache filled with random keys and values of the right shape, so a point at
batch 16 and context 2048 costs one step, not a 32k-token prefill first. The
LM head runs on the last position only, as serving engines do.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from inferplan.measure.gpu_bench import device_timer
from inferplan.measure.microbench import _torch, best_time, cache_keyword
from inferplan.perf.profile import DeviceProfile
from inferplan.perf.resolve import resolve_deployment
from inferplan.perf.step_cost import BatchShape, StepCost, batch_shape
from inferplan.specs.catalog import get_hf_config
from inferplan.specs.hf_config import spec_from_hf_config
from inferplan.specs.model import ModelSpec

DTYPE_FORMATS = {"fp32": ("fp32", "fp32"), "bf16": ("bf16", "bf16")}


@dataclass(frozen=True, slots=True)
class Point:
    """One timed step: ``batch`` sequences; prefill of ``tokens`` new tokens, or decode after ``context`` cached."""

    phase: str
    batch: int
    tokens: int
    context: int
    measured_s: float
    predicted_s: float

    @property
    def ape_pct(self) -> float:
        return 100 * abs(self.predicted_s - self.measured_s) / self.measured_s

    def shape(self) -> BatchShape:
        if self.phase == "prefill":
            return batch_shape([(self.tokens, self.context)] * self.batch)
        return BatchShape.decodes(self.batch, self.batch * self.context)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"ape_pct": self.ape_pct}


@dataclass(frozen=True, slots=True)
class ValidationResult:
    model: str
    layers: int
    dtype: str
    device: str
    profile_source: str
    points: list[Point]
    speed_vs_profile: float | None = None  # the reference matmul's rate now / when profiled (drift of the machine)
    backend: str = "cpu"  # where the steps ran: cpu, or cuda (a GPU device, with torch seeing one)

    @property
    def median_ape_pct(self) -> float:
        return statistics.median(p.ape_pct for p in self.points)


def model_for_validation(model: str, layers: int | None) -> tuple[ModelSpec, dict[str, Any]]:
    """The ModelSpec and config.json mapping, with the layer count cut to ``layers`` (same layer shapes)."""
    name, cfg = get_hf_config(model)
    if layers is not None:
        if layers < 1:
            from inferplan.errors import InputError

            raise InputError(f"--layers must be at least 1, got {layers}")
        cfg = cfg | {"num_hidden_layers": min(layers, int(cfg.get("num_hidden_layers", layers)))}
        for key in ("layer_types", "mlp_only_layers"):
            if isinstance(cfg.get(key), list):
                cfg[key] = cfg[key][: cfg["num_hidden_layers"]]
        name = f"{name} ({cfg['num_hidden_layers']} layers)"
    return spec_from_hf_config(cfg, name=name), cfg


def predictor(spec: ModelSpec, dtype: str, device: str, profile: DeviceProfile | None) -> StepCost:
    weights, kv = DTYPE_FORMATS[dtype]
    return StepCost(resolve_deployment(spec, device, weights=weights, kv=kv, profile=profile))


def run_validation(
    model: str,
    *,
    device: str = "local",
    profile: DeviceProfile | None = None,
    layers: int | None = None,
    dtype: str = "fp32",
    batches: tuple[int, ...] = (1, 4, 16),
    contexts: tuple[int, ...] = (128, 1024),
    prompts: tuple[int, ...] = (32, 128, 512),
    checkpoint: Path | None = None,
    progress: Callable[[str, float], None] | None = None,
) -> ValidationResult:
    torch = _torch()
    from transformers.cache_utils import DynamicCache, StaticCache

    if dtype not in DTYPE_FORMATS:
        from inferplan.errors import InputError

        raise InputError(f"--dtype must be one of {', '.join(DTYPE_FORMATS)}, got {dtype!r}")
    spec, cfg = model_for_validation(model, layers)
    cost = predictor(spec, dtype, device, profile)
    on = "cuda" if cost.dep.device.is_gpu_like and torch.cuda.is_available() else "cpu"
    timer = device_timer(torch, torch.device(on))
    torch_dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[dtype]
    hf = _hf_model(torch, cfg, checkpoint, torch_dtype, on)
    key = cache_keyword(hf)
    keep = {"logits_to_keep": 1} if "logits_to_keep" in _params(hf) else {}
    vocab = int(cfg["vocab_size"])
    kv_heads = int(cfg.get("num_key_value_heads") or cfg["num_attention_heads"])
    head_dim = int(cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"])
    jobs = [("prefill", 1, n, 0) for n in prompts] + [("decode", b, 1, c) for c in contexts for b in batches]
    points: list[Point] = []
    note = progress or (lambda what, frac: None)
    drift_before = _reference_rate(torch) if on == "cpu" else 0.0
    with torch.inference_mode():
        for i, (phase, batch, tokens, context) in enumerate(jobs):
            note(f"{phase} batch {batch} x {tokens if phase == 'prefill' else context} tokens", i / len(jobs))
            if phase == "prefill":
                ids = torch.randint(0, vocab, (batch, tokens), device=on)

                def prefill(ids: Any = ids) -> None:
                    hf(input_ids=ids, use_cache=True, **{key: DynamicCache()}, **keep)

                step: Callable[[], None] = prefill
            else:
                # a preallocated cache written in place, as serving engines keep it (a growing cache would
                # copy itself every step: twice the time at batch 16 x 1024 tokens)
                cache = StaticCache(config=hf.config, max_cache_len=context + 1)
                for layer in range(spec.num_layers):
                    k = torch.randn(batch, kv_heads, context, head_dim, dtype=torch_dtype, device=on)
                    cache.update(k, torch.randn_like(k), layer)
                ids = torch.randint(0, vocab, (batch, 1), device=on)
                pos = torch.full((batch, 1), context, device=on)

                def decode(ids: Any = ids, cache: Any = cache, pos: Any = pos, context: int = context) -> None:
                    hf(input_ids=ids, position_ids=pos, use_cache=True, **{key: cache}, **keep)
                    for layer_cache in cache.layers:  # forget the new token: the next run writes the same slot
                        layer_cache.cumulative_length.fill_(context)

                if not all(hasattr(layer_cache, "cumulative_length") for layer_cache in cache.layers):
                    raise RuntimeError("this transformers version's StaticCache has no cumulative_length; "
                                       "install transformers>=5.20")

                step = decode

            measured = timer(step, min_time_s=1.0, max_reps=10)  # the fastest of several: least disturbed
            p = Point(phase, batch, tokens, context, measured, 0.0)
            points.append(Point(phase, batch, tokens, context, measured, cost.seconds(p.shape())))
    note("done", 1.0)
    prof = cost.dep.device_profile
    drift = _drift(torch, prof, before=drift_before) if on == "cpu" else None
    return ValidationResult(spec.name, spec.num_layers, dtype, cost.dep.device.name, prof.source, points, drift, on)


def _hf_model(torch: Any, cfg: dict[str, Any], checkpoint: Path | None, torch_dtype: Any, on: str) -> Any:
    """The model to time, on ``on`` (cpu or cuda): a checkpoint's, or built from its config with random weights."""
    from transformers import AutoConfig, AutoModelForCausalLM

    if checkpoint:
        hf = AutoModelForCausalLM.from_pretrained(checkpoint, dtype=torch_dtype)
    else:
        hf_cfg = AutoConfig.for_model(**{k: v for k, v in cfg.items() if k not in ("architectures", "torch_dtype")})
        torch.manual_seed(0)
        hf = AutoModelForCausalLM.from_config(hf_cfg, dtype=torch_dtype)  # type: ignore[no-untyped-call]
    hf = hf.to(on)  # type: ignore[arg-type]
    hf.train(False)
    return hf


def _params(model: Any) -> set[str]:
    import inspect

    return set(inspect.signature(model.forward).parameters)


REFERENCE = (256, 4096, 4096)  # rows, out, in: a matmul `inferplan profile` also times


def _reference_rate(torch: Any) -> float:
    m, n, k = REFERENCE
    x, w = torch.randn(m, k), torch.randn(n, k)
    return 2 * m * n * k / best_time(lambda: torch.nn.functional.linear(x, w), min_time_s=0.3)


def _drift(torch: Any, prof: DeviceProfile, *, before: float) -> float | None:
    """How fast this machine runs the reference matmul now, relative to when it was profiled (1.0 = same).

    Shared and throttled machines drift by tens of percent over minutes; this says how much of a
    validation error is the machine changing rather than the model being wrong."""
    m, n, k = REFERENCE
    then = [r for r in prof.measurements.get("matmul", [])
            if r.get("dtype") == "fp32" and (r.get("m"), r.get("n"), r.get("k")) == (m, n, k)]
    if not then:
        return None
    now = (before + _reference_rate(torch)) / 2
    return float(now / (2 * m * n * k / float(then[0]["seconds"])))
