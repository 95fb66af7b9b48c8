"""The pinned engines' argument parsers, rebuilt from engine_options.json (see extract_engine_options.py).

engine_options.json was extracted from vLLM 0.11.0 (vllm/entrypoints/openai/cli_args.py,
vllm/engine/arg_utils.py), SGLang 0.5.3 (sglang/srt/server_args.py) and sglang-router 0.3.2
(sglang_router/router_args.py) by building their parsers; parsing a generated command with the
rebuilt parser fails on an option, a value choice or a number those versions would refuse.
"""

from __future__ import annotations

import argparse
import json
from functools import cache
from pathlib import Path
from typing import Any

OPTIONS = Path(__file__).with_name("engine_options.json")
_TYPES = {"int": int, "float": float, "str": str}


class Refused(Exception):
    """The engine's parser would exit with a usage error."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise Refused(message)


@cache
def engine_options() -> dict[str, Any]:
    data = json.loads(OPTIONS.read_text())
    assert isinstance(data, dict)
    return data


@cache
def parser(engine: str) -> argparse.ArgumentParser:
    """An argparse parser with the engine's options: the same names, arities, choices and numeric types."""
    spec = engine_options()[engine]
    p = _Parser(prog=engine, add_help=False, allow_abbrev=False)
    for name in spec["positional"]:
        p.add_argument(name)
    seen: set[str] = set()
    for entry in spec["options"].values():
        first = entry["option_strings"][0]
        if first in seen:
            continue
        seen.add(first)
        kw: dict[str, Any] = {"dest": entry["dest"]}
        if entry["flag"]:
            kw["action"] = "store_true"
        else:
            kw["nargs"] = entry["nargs"]
            if entry.get("append"):
                kw["action"] = "append"
            kind = _TYPES[entry["type"]] if entry["type"] else str
            if entry["type"]:
                kw["type"] = kind
            if entry["choices"]:
                kw["choices"] = [kind(c) for c in entry["choices"]]
        p.add_argument(*entry["option_strings"], **kw)
    return p


def parse(engine: str, argv: list[str]) -> argparse.Namespace:
    """Parse ``argv`` (without the program name) as the engine would; Refused if it would not."""
    return parser(engine).parse_args(argv)


def version(engine: str) -> str:
    return str(engine_options()[engine]["version"])
