"""Build a ModelSpec from a Hugging Face ``config.json``.

One reader per architecture family, chosen by ``model_type`` from a plain dict.
An architecture feature we cannot represent is an error naming the field,
never silently ignored: a wrong parameter count is worse than no answer.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from inferplan.errors import InputError
from inferplan.specs.model import ATTN_FULL, ATTN_SLIDING, MLASpec, ModelSpec, MoESpec

Config = Mapping[str, Any]


def _req(cfg: Config, key: str, where: str) -> Any:
    if key not in cfg or cfg[key] is None:
        raise InputError(f"{where}: config.json has no '{key}'; it is required for model_type '{cfg.get('model_type')}'")
    return cfg[key]


def _int(cfg: Config, key: str, where: str) -> int:
    value = _req(cfg, key, where)
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise InputError(f"{where}: '{key}' must be a positive integer, got {value!r}")
    return value


def _common(cfg: Config, where: str) -> dict[str, Any]:
    heads = _int(cfg, "num_attention_heads", where)
    hidden = _int(cfg, "hidden_size", where)
    kv = cfg.get("num_key_value_heads") or heads
    head_dim = cfg.get("head_dim") or hidden // heads
    if heads % kv:
        raise InputError(f"{where}: num_attention_heads={heads} is not a multiple of num_key_value_heads={kv}")
    for unsupported in ("mlp_bias",):
        if cfg.get(unsupported):
            raise InputError(f"{where}: '{unsupported}: true' is not modelled by inferplan")
    return dict(
        model_type=cfg.get("model_type", ""),
        hidden_size=hidden,
        num_layers=_int(cfg, "num_hidden_layers", where),
        vocab_size=_int(cfg, "vocab_size", where),
        num_attention_heads=heads,
        num_kv_heads=int(kv),
        head_dim=int(head_dim),
        intermediate_size=_int(cfg, "intermediate_size", where),
        max_position_embeddings=_int(cfg, "max_position_embeddings", where),
        tie_word_embeddings=bool(cfg.get("tie_word_embeddings", False)),
        qkv_bias=bool(cfg.get("attention_bias", False)),
        o_bias=bool(cfg.get("attention_bias", False)),
    )


def _uniform_window(cfg: Config, n_layers: int, max_pos: int) -> dict[str, Any]:
    """Mistral-style: every layer uses the same window, if one is set and smaller than the context."""
    window = cfg.get("sliding_window")
    if cfg.get("use_sliding_window") is False or not window or window >= max_pos:
        return {}
    return dict(layer_attention=(ATTN_SLIDING,) * n_layers, sliding_window=int(window))


def _llama(cfg: Config, where: str) -> dict[str, Any]:
    base = _common(cfg, where)
    return base | _uniform_window(cfg, base["num_layers"], base["max_position_embeddings"])


def _qwen2(cfg: Config, where: str) -> dict[str, Any]:
    base = _common(cfg, where) | dict(qkv_bias=True, o_bias=False)
    if cfg.get("use_sliding_window"):
        raise InputError(f"{where}: use_sliding_window=true with max_window_layers is not modelled for qwen2")
    return base


def _qwen3(cfg: Config, where: str) -> dict[str, Any]:
    base = _common(cfg, where) | dict(qk_norm=True)
    if cfg.get("use_sliding_window"):
        raise InputError(f"{where}: use_sliding_window=true is not modelled for {cfg.get('model_type')}")
    return base


def _qwen3_moe(cfg: Config, where: str) -> dict[str, Any]:
    base = _qwen3(cfg, where)
    n = base["num_layers"]
    dense_layers = set(cfg.get("mlp_only_layers") or [])
    step = int(cfg.get("decoder_sparse_step", 1))
    moe_layers = tuple(i not in dense_layers and (i + 1) % step == 0 for i in range(n))
    moe = MoESpec(
        num_experts=_int(cfg, "num_experts", where),
        top_k=_int(cfg, "num_experts_per_tok", where),
        expert_intermediate_size=_int(cfg, "moe_intermediate_size", where),
    )
    return base | dict(moe=moe, moe_layers=moe_layers)


def _mixtral(cfg: Config, where: str) -> dict[str, Any]:
    base = _llama(cfg, where)
    moe = MoESpec(
        num_experts=_int(cfg, "num_local_experts", where),
        top_k=_int(cfg, "num_experts_per_tok", where),
        expert_intermediate_size=base["intermediate_size"],
    )
    return base | dict(moe=moe)


def _gemma2(cfg: Config, where: str) -> dict[str, Any]:
    base = _common(cfg, where) | dict(norms_per_layer=4, tie_word_embeddings=cfg.get("tie_word_embeddings", True))
    window = _int(cfg, "sliding_window", where)
    # Gemma 2 alternates: even layers local (sliding), odd layers global.
    layers = tuple(ATTN_SLIDING if i % 2 == 0 else ATTN_FULL for i in range(base["num_layers"]))
    return base | dict(layer_attention=layers, sliding_window=window)


def _gemma3(cfg: Config, where: str) -> dict[str, Any]:
    text = cfg.get("text_config", cfg)
    base = _common(text, where) | dict(
        model_type=cfg.get("model_type", "gemma3"),
        norms_per_layer=4,
        qk_norm=True,
        tie_word_embeddings=text.get("tie_word_embeddings", True),
    )
    n = base["num_layers"]
    window = _int(text, "sliding_window", where)
    if "layer_types" in text:
        layers = _layer_types(text["layer_types"], n, where)
    else:
        pattern = int(text.get("sliding_window_pattern", 6))
        layers = tuple(ATTN_FULL if (i + 1) % pattern == 0 else ATTN_SLIDING for i in range(n))
    extra = {}
    if "vision_config" in cfg:
        extra = dict(extra_params_note="vision encoder not modelled: text decoder only")
    return base | dict(layer_attention=layers, sliding_window=window) | extra


def _phi3(cfg: Config, where: str) -> dict[str, Any]:
    base = _common(cfg, where)
    return base | _uniform_window(cfg, base["num_layers"], base["max_position_embeddings"])


def _gpt_oss(cfg: Config, where: str) -> dict[str, Any]:
    base = _common(cfg, where) | dict(qkv_bias=True, o_bias=True, attention_sinks=True)
    n = base["num_layers"]
    layers = _layer_types(_req(cfg, "layer_types", where), n, where)
    moe = MoESpec(
        num_experts=_int(cfg, "num_local_experts", where),
        top_k=int(cfg.get("num_experts_per_tok") or _int(cfg, "experts_per_token", where)),
        expert_intermediate_size=base["intermediate_size"],
        router_bias=True,
        expert_bias=True,
    )
    return base | dict(layer_attention=layers, sliding_window=_int(cfg, "sliding_window", where), moe=moe)


def _deepseek(cfg: Config, where: str) -> dict[str, Any]:
    base = _common(cfg, where)
    n = base["num_layers"]
    first_dense = int(cfg.get("first_k_dense_replace", 0))
    freq = int(cfg.get("moe_layer_freq", 1))
    moe_layers = tuple(i >= first_dense and i % freq == 0 for i in range(n))
    expert_inter = _int(cfg, "moe_intermediate_size", where)
    shared = int(cfg.get("n_shared_experts") or 0)
    moe = MoESpec(
        num_experts=_int(cfg, "n_routed_experts", where),
        top_k=_int(cfg, "num_experts_per_tok", where),
        expert_intermediate_size=expert_inter,
        num_shared_experts=shared,
        shared_intermediate_size=expert_inter,
        score_correction_bias=cfg.get("topk_method") == "noaux_tc",
    )
    mla = MLASpec(
        q_lora_rank=cfg.get("q_lora_rank"),
        kv_lora_rank=_int(cfg, "kv_lora_rank", where),
        qk_nope_head_dim=_int(cfg, "qk_nope_head_dim", where),
        qk_rope_head_dim=_int(cfg, "qk_rope_head_dim", where),
        v_head_dim=_int(cfg, "v_head_dim", where),
    )
    return base | dict(moe=moe, moe_layers=moe_layers, mla=mla, head_dim=mla.qk_nope_head_dim + mla.qk_rope_head_dim)


def _layer_types(types: Any, n: int, where: str) -> tuple[str, ...]:
    names = {"sliding_attention": ATTN_SLIDING, "full_attention": ATTN_FULL}
    if not isinstance(types, list) or len(types) != n or any(t not in names for t in types):
        raise InputError(
            f"{where}: 'layer_types' must list {n} entries of 'sliding_attention' or 'full_attention', got {types!r}"
        )
    return tuple(names[t] for t in types)


READERS: dict[str, Callable[[Config, str], dict[str, Any]]] = {
    "llama": _llama,
    "mistral": _llama,
    "qwen2": _qwen2,
    "qwen3": _qwen3,
    "qwen3_moe": _qwen3_moe,
    "mixtral": _mixtral,
    "gemma2": _gemma2,
    "gemma3": _gemma3,
    "gemma3_text": _gemma3,
    "phi3": _phi3,
    "gpt_oss": _gpt_oss,
    "deepseek_v2": _deepseek,
    "deepseek_v3": _deepseek,
}


def spec_from_hf_config(cfg: Config, *, name: str, source: str = "", note: str = "") -> ModelSpec:
    """Read a config.json mapping; raise InputError naming the field if it cannot be modelled."""
    if not isinstance(cfg, Mapping):
        raise InputError(f"{name}: config.json must be a JSON object")
    model_type = cfg.get("model_type")
    reader = READERS.get(str(model_type))
    if reader is None:
        supported = ", ".join(sorted(READERS))
        raise InputError(f"{name}: model_type {model_type!r} is not supported (supported: {supported})")
    fields = reader(cfg, name)
    return ModelSpec(name=name, source=source, note=note, **fields)


def load_hf_config_file(path: Path) -> ModelSpec:
    """Load ``config.json`` from a file or a directory holding one."""
    file = path / "config.json" if path.is_dir() else path
    try:
        cfg = json.loads(file.read_text())
    except FileNotFoundError:
        raise InputError(f"{file}: no such file; pass a config.json or a folder containing one") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{file}: not valid JSON (line {exc.lineno}: {exc.msg})") from None
    name = file.parent.name if file.name == "config.json" else file.stem
    return spec_from_hf_config(cfg, name=name or "model", source=str(file))
