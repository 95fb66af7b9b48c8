"""The bundled catalogs: models (config.json facts), devices and formats (YAML), with sources.

Catalog files ship inside the package and are read once per process; the
returned mappings are read-only views so no caller can change shared state.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from functools import cache
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar

import platformdirs
import yaml
from pydantic import BaseModel, ValidationError

from inferplan.errors import InputError, unknown_name
from inferplan.specs.engines import EngineSpec
from inferplan.specs.hardware import DeviceSpec
from inferplan.specs.hf_config import load_hf_config_file, spec_from_hf_config
from inferplan.specs.kv_eviction import EvictionMethod
from inferplan.specs.model import ModelSpec
from inferplan.specs.precision import KVFormat, WeightFormat
from inferplan.specs.speculation import SpecMethod

_CATALOG = resources.files("inferplan.specs") / "catalog"
_F = TypeVar("_F", WeightFormat, KVFormat)
_T = TypeVar("_T")
_M = TypeVar("_M", bound=BaseModel)


@cache
def model_catalog() -> MappingProxyType[str, ModelSpec]:
    models: dict[str, ModelSpec] = {}
    for entry in sorted((_CATALOG / "models").iterdir(), key=lambda p: p.name):
        if not entry.name.endswith(".json"):
            continue
        data = json.loads(entry.read_text())
        models[data["name"]] = spec_from_hf_config(
            data["config"], name=data["name"], source=data["source"], note=data.get("note", "")
        )
    return MappingProxyType(models)


def get_hf_config(name_or_path: str) -> tuple[str, dict[str, Any]]:
    """(name, the config.json mapping) of a catalog model or a config file, to build the real model from."""
    key = name_or_path.lower()
    entry = _CATALOG / "models" / f"{key}.json"
    if key in model_catalog() and entry.is_file():
        data = json.loads(entry.read_text())
        return str(data["name"]), dict(data["config"])
    spec = get_model(name_or_path)  # validates the file, or raises a clear error for an unknown name
    path = Path(name_or_path)
    file = path / "config.json" if path.is_dir() else path
    return spec.name, dict(json.loads(file.read_text()))


def get_model(name_or_path: str) -> ModelSpec:
    """A catalog name, or a path to a config.json (or a folder holding one)."""
    catalog = model_catalog()
    key = name_or_path.lower()
    if key in catalog:
        return catalog[key]
    path = Path(name_or_path)
    if path.exists() or name_or_path.endswith(".json") or "/" in name_or_path:
        return load_hf_config_file(path)
    raise unknown_name("model", name_or_path, catalog, hint="run `inferplan models`, or pass a path to a config.json")


def read_yaml(text: str) -> Any:
    """``yaml.safe_load`` with libyaml's C parser where PyYAML has it: the catalogs parse 10x faster."""
    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506  (a safe loader)


def _load_yaml(name: str) -> dict[str, Any]:
    data = read_yaml((_CATALOG / name).read_text())
    assert isinstance(data, dict)
    return data


def _entries(name: str, kind: type[_M]) -> MappingProxyType[str, _M]:
    """A catalog file whose top-level keys name its entries, each validated as ``kind`` with its name."""
    return MappingProxyType({n: kind.model_validate({"name": n, **f}) for n, f in _load_yaml(name).items()})


def catalog_yaml(name: str) -> dict[str, Any]:
    """A bundled catalog file as data ({} where the package has none): for tables other modules validate."""
    return _load_yaml(name) if (_CATALOG / name).is_file() else {}


def catalog_path(name: str) -> Path:
    """Where a bundled catalog file lives (``inferplan accuracy --fit`` rewrites the fitted ones)."""
    return Path(str(_CATALOG / name))


@cache
def device_catalog() -> MappingProxyType[str, DeviceSpec]:
    return _entries("devices.yaml", DeviceSpec)


def load_device_file(path: Path) -> DeviceSpec:
    """A user's own device, in the same YAML shape as one entry of devices.yaml."""
    try:
        data = read_yaml(path.read_text())
    except FileNotFoundError:
        raise InputError(f"{path}: no such device file") from None
    except yaml.YAMLError as exc:
        raise InputError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: a device file is a YAML mapping of fields (see `inferplan devices --json`)")
    data.setdefault("name", path.stem)
    try:
        return DeviceSpec.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise InputError(f"{path}: field '{field}': {first['msg']}") from None


def local_profile_path() -> Path:
    """Where `inferplan profile` writes this machine's profile (``INFERPLAN_PROFILE`` overrides)."""
    env = os.environ.get("INFERPLAN_PROFILE")
    return Path(env) if env else Path(platformdirs.user_data_dir("inferplan")) / "local-profile.yaml"


def local_device(path: Path | None = None) -> DeviceSpec:
    """The device `inferplan profile` measured on this machine."""
    path = path or local_profile_path()
    if not path.exists():
        raise InputError(f"device 'local' needs a profile of this machine and {path} does not exist: run "
                         "`inferplan profile` first (about a minute), or pass --profile FILE")
    try:
        data = read_yaml(path.read_text())
        return DeviceSpec.model_validate(data["device_spec"])
    except (yaml.YAMLError, KeyError, TypeError, ValidationError) as exc:
        raise InputError(f"{path}: not a profile written by `inferplan profile` ({exc}); run it again") from None


def get_device(name_or_path: str) -> DeviceSpec:
    catalog = device_catalog()
    key = name_or_path.lower()
    if key == "local":
        return local_device()
    if key in catalog:
        return catalog[key]
    for device in catalog.values():
        if key in device.aliases:
            return device
    if name_or_path.endswith((".yaml", ".yml")):
        return load_device_file(Path(name_or_path))
    raise unknown_name("device", name_or_path, catalog, hint="run `inferplan devices`, or pass a device .yaml file")


@cache
def engine_catalog() -> MappingProxyType[str, EngineSpec]:
    return _entries("engines.yaml", EngineSpec)


def get_engine(name: str) -> EngineSpec:
    """A serving engine by name (vllm, sglang, trtllm, llamacpp)."""
    return _by_name(engine_catalog(), name, "engine")


def _by_name(catalog: Mapping[str, _T], name: str, kind: str) -> _T:
    """A catalog entry by its name (any case), or the error that lists the names there are."""
    key = name.lower()
    if key in catalog:
        return catalog[key]
    raise unknown_name(kind, name, catalog, hint=f"choose one of {', '.join(catalog)}")


def default_engine(device: DeviceSpec) -> EngineSpec:
    """The engine a device runs when none is named: vLLM on GPUs, llama.cpp on CPUs, Apple and edge chips."""
    return get_engine("vllm" if device.is_gpu_like else "llamacpp")


def engine_for(device: DeviceSpec, weights: WeightFormat) -> EngineSpec:
    """The engine a replica runs when none is named: the device's default engine if it loads ``weights``,
    else the first catalog engine that serves on the device and loads them (GGUF on a GPU: llama.cpp)."""
    first = default_engine(device)
    if first.name in weights.engines:
        return first
    for engine in engine_catalog().values():
        if engine.runs(device.kind) and engine.name in weights.engines:
            return engine
    return first  # nothing loads them: Deployment's check says so


@cache
def speculation_catalog() -> MappingProxyType[str, SpecMethod]:
    return _entries("speculation.yaml", SpecMethod)


def get_spec_method(name: str) -> SpecMethod:
    """A speculative-decoding method by name (eagle3, eagle, mtp, ngram, draft)."""
    return _by_name(speculation_catalog(), name, "speculative method")


@cache
def kv_eviction_catalog() -> MappingProxyType[str, EvictionMethod]:
    return _entries("kv_eviction.yaml", EvictionMethod)


@cache
def fitted_profiles() -> MappingProxyType[str, dict[str, Any]]:
    """Device efficiencies and engine overheads fitted to public measurements, keyed "<device kind>/<engine>"
    (written by `inferplan accuracy --fit`); absent keys fall back to the kind's defaults and the engine's priors."""
    return MappingProxyType({k: dict(v) for k, v in catalog_yaml("profiles.yaml").get("profiles", {}).items()})


@cache
def weight_format_catalog() -> MappingProxyType[str, WeightFormat]:
    raw = _load_yaml("formats.yaml")["weights"]
    return MappingProxyType({n: WeightFormat.model_validate({"name": n, **f}) for n, f in raw.items()})


@cache
def kv_format_catalog() -> MappingProxyType[str, KVFormat]:
    raw = _load_yaml("formats.yaml")["kv_cache"]
    return MappingProxyType({n: KVFormat.model_validate({"name": n, **f}) for n, f in raw.items()})


def get_weight_format(name: str) -> WeightFormat:
    return _lookup_format(name, weight_format_catalog(), "weight format")


def weight_format_for(model: ModelSpec, name: str | None = None) -> WeightFormat:
    """Weight format ``name`` (default: the model's own) for ``model``: the format its checkpoint was released in
    is the model itself, so it carries no quality loss (gpt-oss in MXFP4)."""
    fmt = get_weight_format(name or model.default_weights)
    if model.released_in_checkpoint_format and fmt.name == model.checkpoint_format:
        return fmt.as_released(model.released_in_checkpoint_format)
    return fmt


def get_kv_format(name: str) -> KVFormat:
    return _lookup_format(name, kv_format_catalog(), "KV-cache format")


def _lookup_format(name: str, catalog: MappingProxyType[str, _F], kind: str) -> _F:
    key = name.lower()
    if key in catalog:
        return catalog[key]
    for fmt in catalog.values():
        if key in fmt.aliases:
            return fmt
    raise unknown_name(kind, name, catalog, hint="run `inferplan formats`")
