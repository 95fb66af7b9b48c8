"""Rebuild tests/deploy/engine_options.json from the engines' own argument parsers.

Not a test: run it by hand where vLLM, SGLang and sglang-router of the pinned versions import
(their wheels install with --no-deps next to a few light pure-Python deps; no GPU needed):

    python tests/deploy/extract_engine_options.py tests/deploy/engine_options.json

vLLM's platform is set to CPU so its config classes build without a GPU.
"""

from __future__ import annotations

import argparse
import json
import sys
from importlib.metadata import PackageNotFoundError, version
from typing import Any


def _options(parser: argparse.ArgumentParser) -> dict[str, dict[str, Any]]:
    """Every option string: whether it takes values (nargs), its choices, and whether it is a flag."""
    out: dict[str, dict[str, Any]] = {}
    for action in parser._actions:
        if not action.option_strings or isinstance(action, argparse._HelpAction):
            continue
        kind = action.type if action.type in (int, float, str) else None  # custom parsers: value left unchecked
        entry = {"dest": action.dest, "nargs": action.nargs, "flag": action.nargs == 0,
                 "type": kind.__name__ if kind else None,
                 "choices": sorted(map(str, action.choices)) if action.choices else None,
                 "option_strings": list(action.option_strings)}
        if isinstance(action, argparse._AppendAction):  # repeatable: --prefill URL PORT --prefill URL PORT
            entry["append"] = True
        for opt in action.option_strings:
            out[opt] = entry
    return dict(sorted(out.items()))


def _vllm() -> dict[str, Any]:
    import vllm.platforms as platforms
    from vllm.platforms.cpu import CpuPlatform

    platforms._current_platform = CpuPlatform()
    from vllm.entrypoints.openai.cli_args import make_arg_parser
    from vllm.model_executor.layers.quantization import QUANTIZATION_METHODS
    from vllm.utils import FlexibleArgumentParser

    opts = _options(make_arg_parser(FlexibleArgumentParser()))
    opts["--quantization"]["choices"] = sorted(QUANTIZATION_METHODS)  # validated after parsing, from this list
    return {"source": "vllm/entrypoints/openai/cli_args.py make_arg_parser (+ vllm/engine/arg_utils.py "
                      "EngineArgs.add_cli_args; --quantization values from "
                      "vllm/model_executor/layers/quantization/__init__.py QUANTIZATION_METHODS)",
            "positional": ["model_tag"], "options": opts}


def _sglang() -> dict[str, Any]:
    from sglang.srt.server_args import ServerArgs

    parser = argparse.ArgumentParser()
    ServerArgs.add_cli_args(parser)
    return {"source": "sglang/srt/server_args.py ServerArgs.add_cli_args", "positional": [],
            "options": _options(parser)}


def _router() -> dict[str, Any]:
    from sglang_router.router_args import RouterArgs

    parser = argparse.ArgumentParser()
    RouterArgs.add_cli_args(parser)
    return {"source": "sglang_router/router_args.py RouterArgs.add_cli_args", "positional": [],
            "options": _options(parser)}


def _version(name: str, fallback: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:  # unpacked wheel on sys.path, no metadata
        return fallback


def main() -> None:
    pins = {"vllm": "0.11.0", "sglang": "0.5.3", "sglang-router": "0.3.2"}
    doc = {
        "vllm": {"version": _version("vllm", pins["vllm"]), **_vllm()},
        "sglang": {"version": _version("sglang", pins["sglang"]), **_sglang()},
        "sglang-router": {"version": _version("sglang-router", pins["sglang-router"]), **_router()},
    }
    with open(sys.argv[1], "w") as f:  # the engines log to stdout while they import
        json.dump(doc, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
