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
        raise InputError(f"{where}: config.json has no '{key}'; "
                         f"it is required for model_type '{cfg.get('model_type')}'")
    return cfg[key]


def _int(cfg: Config, key: str, where: str) -> int:
    value = _req(cfg, key, where)
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise InputError(f"{where}: '{key}' must be a positive integer, got {value!r}")
    return value


# What transformers assumes when config.json has no num_key_value_heads: each configuration class's
# default (transformers 5.24, models/*/configuration_*.py; None = as many as attention heads, MHA).
KV_HEADS_DEFAULT: dict[str, int | None] = {
    "llama": None, "phi3": None, "deepseek_v2": None, "mistral": 8, "mixtral": 8, "gpt_oss": 8, "qwen2": 32,
    "qwen3": 32, "qwen3_moe": 4, "gemma2": 4, "gemma3": 4, "gemma3_text": 4, "deepseek_v3": 128,
}


def _kv_heads(cfg: Config, heads: int, where: str) -> tuple[int, str]:
    """num_key_value_heads, or the class default transformers would use; the note says which."""
    kv = cfg.get("num_key_value_heads")
    if kv is not None:
        if not isinstance(kv, int) or isinstance(kv, bool) or kv <= 0:
            raise InputError(f"{where}: 'num_key_value_heads' must be a positive integer, got {kv!r}")
        return kv, ""
    model_type = str(cfg.get("model_type", ""))
    default = KV_HEADS_DEFAULT.get(model_type)
    value = heads if default is None else default
    kind = "multi-head attention" if value == heads else f"{value} KV heads"
    return value, (f"config.json has no num_key_value_heads: read as {value} ({kind}), transformers' default "
                   f"for model_type '{model_type}'")


def _common(cfg: Config, where: str) -> dict[str, Any]:
    heads = _int(cfg, "num_attention_heads", where)
    hidden = _int(cfg, "hidden_size", where)
    kv, kv_note = _kv_heads(cfg, heads, where)
    head_dim = cfg.get("head_dim") or hidden // heads
    if heads % kv:
        raise InputError(f"{where}: num_attention_heads={heads} is not a multiple of num_key_value_heads={kv}")
    for unsupported in ("mlp_bias",):
        if cfg.get(unsupported):
            raise InputError(f"{where}: '{unsupported}: true' is not modelled by inferplan")
    return dict(
        model_type=cfg.get("model_type", ""),
        note=kv_note,
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


GPT_OSS_RELEASED = ("OpenAI quantized gpt-oss's MoE weights to MXFP4 in post-training and released it so (the gpt-oss "
                    "model card): that checkpoint is the model")


def _gpt_oss(cfg: Config, where: str) -> dict[str, Any]:
    base = _common(cfg, where) | dict(qkv_bias=True, o_bias=True, attention_sinks=True)
    quant = cfg.get("quantization_config")
    if isinstance(quant, Mapping) and str(quant.get("quant_method", "")).lower() == "mxfp4":
        base["released_in_checkpoint_format"] = GPT_OSS_RELEASED
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


def _llama4(cfg: Config, where: str) -> dict[str, Any]:
    """Llama 4 (transformers' Llama4TextConfig): the ``moe_layers`` (default every ``interleave_moe_layer_step``-th)
    route to one of ``num_local_experts`` beside one shared expert, both ``intermediate_size`` wide; the other layers
    are dense at ``intermediate_size_mlp``. RoPE layers attend within ``attention_chunk_size`` chunks and the NoPE
    ones (every ``no_rope_layer_interval``-th) globally: the chunks are modelled as a sliding window of that size,
    the most keys a query reads. A multimodal checkpoint's vision encoder is not modelled."""
    text = cfg.get("text_config", cfg)
    base = _common(text, where) | dict(model_type=cfg.get("model_type", "llama4"),
                                       tie_word_embeddings=bool(text.get("tie_word_embeddings", False)))
    n = base["num_layers"]
    step = int(text.get("interleave_moe_layer_step", 1))
    listed = text.get("moe_layers")
    routed = set(listed) if listed is not None else set(range(step - 1, n, step))
    expert = base["intermediate_size"]
    moe = MoESpec(num_experts=_int(text, "num_local_experts", where), top_k=int(text.get("num_experts_per_tok", 1)),
                  expert_intermediate_size=expert, num_shared_experts=1, shared_intermediate_size=expert)
    interval = int(text.get("no_rope_layer_interval", 4))
    rope = text.get("no_rope_layers") or [int((i + 1) % interval != 0) for i in range(n)]
    chunk = text.get("attention_chunk_size")
    if len(rope) != n:
        raise InputError(f"{where}: 'no_rope_layers' must list {n} entries, got {len(rope)}")
    layers = tuple(ATTN_SLIDING if chunk and rope[i] else ATTN_FULL for i in range(n))
    window = dict(layer_attention=layers, sliding_window=int(chunk)) if chunk else {}
    extra = dict(extra_params_note="vision encoder not modelled: text decoder only") if "vision_config" in cfg else {}
    return base | dict(intermediate_size=int(text.get("intermediate_size_mlp") or expert), moe=moe,
                       moe_layers=tuple(i in routed for i in range(n))) | window | extra


def _mistral3(cfg: Config, where: str) -> dict[str, Any]:
    """Mistral Small 3.1/3.2 (Mistral3ForConditionalGeneration): a Pixtral vision encoder, not modelled, beside a
    text decoder read by the reader of its own ``text_config.model_type``."""
    text = cfg.get("text_config")
    if not isinstance(text, Mapping):
        raise InputError(f"{where}: model_type mistral3 needs a 'text_config' object (the text decoder's config)")
    inner = str(text.get("model_type", "mistral"))
    reader = READERS.get(inner)
    if reader is None or inner == "mistral3":
        raise InputError(f"{where}: text_config.model_type {inner!r} is not supported inside mistral3")
    return reader(text, where) | dict(model_type="mistral3",
                                      extra_params_note="vision encoder (Pixtral) not modelled: text decoder only")


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
    "kimi_k2": _deepseek,  # Kimi-K2 is DeepSeek-V3's architecture under its own model_type (its model card)
    "llama4": _llama4,
    "llama4_text": _llama4,
    "mistral3": _mistral3,
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
    notes = [n for n in (note, fields.pop("note", "")) if n]
    fmt, quant_note = checkpoint_format(cfg.get("quantization_config"), name)
    notes += [quant_note] if quant_note else []
    mtp = cfg.get("num_nextn_predict_layers") or 0
    return ModelSpec(name=name, source=source, note="; ".join(notes), checkpoint_format=fmt,
                     mtp_layers=int(mtp) if isinstance(mtp, int) else 0, **fields)


def checkpoint_format(quant: Any, where: str) -> tuple[str | None, str]:
    """The weight format a config.json's ``quantization_config`` declares (None: none, 16-bit weights).

    A checkpoint is what it is: an fp8 or AWQ model must never be priced as bf16, so a method we
    cannot map is an error naming the field.
    """
    if quant is None:
        return None, ""
    if not isinstance(quant, Mapping):
        raise InputError(f"{where}: 'quantization_config' must be a JSON object, got {quant!r}")
    method = str(quant.get("quant_method", "")).lower()
    bits = quant.get("bits") or quant.get("w_bit")
    fmt = _QUANT_METHODS.get((method, bits)) or _QUANT_METHODS.get((method, None))
    if method == "compressed-tensors":
        fmt = _compressed_tensors(quant, where)
    elif method == "mxfp4":  # gpt-oss: experts only where attention is left unconverted
        kept = " ".join(str(m) for m in quant.get("modules_to_not_convert") or ())
        fmt = "mxfp4-moe" if "self_attn" in kept else "mxfp4"
    elif method == "bitsandbytes":
        fmt = "nf4" if quant.get("load_in_4bit") else "int8" if quant.get("load_in_8bit") else None
    if fmt is None:
        known = ", ".join(sorted({m for m, _ in _QUANT_METHODS} | {"compressed-tensors", "bitsandbytes", "mxfp4"}))
        raise InputError(f"{where}: quantization_config.quant_method {method!r} (bits {bits!r}) is not modelled; "
                         f"known methods: {known}. Give the 16-bit config.json and a --weights format instead")
    return fmt, f"checkpoint quantized by config.json's quantization_config ({method}): weights {fmt}"


_QUANT_METHODS: dict[tuple[str, int | None], str] = {
    ("fp8", None): "fp8", ("fbgemm_fp8", None): "fp8", ("awq", 4): "int4-awq", ("awq", None): "int4-awq",
    ("gptq", 4): "int4-gptq", ("gptq", 8): "int8",
}


def _compressed_tensors(quant: Mapping[str, Any], where: str) -> str | None:
    """compressed-tensors (llm-compressor): the weights' bit width and type in the first config group."""
    groups = quant.get("config_groups")
    if not isinstance(groups, Mapping) or not groups:
        raise InputError(f"{where}: quantization_config (compressed-tensors) has no config_groups to read")
    first = next(iter(groups.values()))
    weights = first.get("weights") or {} if isinstance(first, Mapping) else {}
    bits, kind = weights.get("num_bits"), weights.get("type")
    if bits == 8:
        return "fp8" if kind == "float" else "int8"
    if bits == 4 and kind == "int":
        return "int4-gptq"
    return None


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
