"""Start a real OpenAI-compatible server on loopback: `transformers serve` with a local model folder.

For tests and the accuracy checks: the server is the same one a user would run,
started as a subprocess, waited for on its /health route, and stopped on exit.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def served(cmd: list[str], port: int, *, name: str, log: Path | None = None, startup_timeout_s: float = 120.0,
           env: dict[str, str] | None = None, poll_s: float = 0.25) -> Iterator[str]:
    """Run ``cmd`` (a server listening on 127.0.0.1:``port``), yield its API base URL once /health answers 200,
    and stop it afterwards, whatever happened: the one start-wait-stop both local servers share."""
    seen = f"; its log is {log}" if log else ""
    sink: IO[bytes] | int = log.open("wb") if log else subprocess.DEVNULL
    proc = subprocess.Popen(cmd, stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
    try:
        deadline = time.monotonic() + startup_timeout_s
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with code {proc.returncode} before it was ready{seen}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1.0).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not answer /health within {startup_timeout_s:g} s{seen}")
            time.sleep(poll_s)
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


@contextmanager
def transformers_server(model_dir: Path, *, port: int | None = None, continuous_batching: bool = True,
                        log: Path | None = None, startup_timeout_s: float = 120.0) -> Iterator[str]:
    """Yield the API base URL (http://127.0.0.1:PORT/v1) of a running server; stop it afterwards."""
    port = port or free_port()
    exe = shutil.which("transformers")
    cmd = [exe] if exe else [sys.executable, "-m", "transformers.cli.transformers"]
    cmd += ["serve", str(model_dir), "--host", "127.0.0.1", "--port", str(port), "--device", "cpu"]
    if continuous_batching:
        cmd.append("--continuous-batching")
    env = os.environ | {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    with served(cmd, port, name="transformers serve", log=log, startup_timeout_s=startup_timeout_s, env=env) as url:
        yield url
