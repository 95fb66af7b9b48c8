"""The workbench under test: a real registry with real runs, the app in-process, and a real browser."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from inferplan import api
from inferplan.ui.app import Settings, create_app

LOCAL = "http://127.0.0.1:8765"  # what a browser on this machine sends as the Host (the server checks it)
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "ui"


@pytest.fixture(scope="session")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A registry holding one simulation, one plan and one fit, run the way the CLI runs them."""
    root = tmp_path_factory.mktemp("workbench")
    reg = api.Registry(root / "runs.sqlite")
    out = root / "inferplan-runs"
    api.run_simulation(api.SimulationConfig(workload="chat", rate=2, duration_s=20), out_dir=out, registry=reg)
    api.run_simulation(api.SimulationConfig(workload="chat", rate=4, duration_s=20, device="a100-80gb"), out_dir=out,
                       registry=reg)
    api.run_plan(api.PlanRequest(workload="chat", rate=2, duration_s=30, devices=("l4", "a10g"), executor="serial"),
                 out_dir=out, registry=reg)
    dep = api.build_deployment("llama-3.1-8b", "l4")
    api.record_fit(api.fit(dep, context=8192), {"model": "llama-3.1-8b", "device": "l4"}, reg)
    return root / "runs.sqlite"


@pytest.fixture
def registry_copy(seeded: Path, tmp_path: Path) -> Path:
    """The seeded registry, copied so a test may add runs (the run folders stay where they were recorded)."""
    shutil.copy(seeded, tmp_path / "runs.sqlite")
    return tmp_path / "runs.sqlite"


@pytest.fixture
def client(registry_copy: Path) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(registry=registry_copy)), base_url=LOCAL, follow_redirects=False) as c:
        yield c


def run_ids(registry: Path, kind: str) -> list[str]:
    records, _ = api.Registry(registry).search(api.RunQuery(kind=kind))
    return [r.id for r in records]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def find_chromium() -> str | None:
    """A system Chromium; where there is none and we may, install it from the system packages."""
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if path := shutil.which(name):
            return path
    if shutil.which("apt-get") and hasattr(os, "geteuid") and os.geteuid() == 0:
        env = os.environ | {"DEBIAN_FRONTEND": "noninteractive"}
        install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", "chromium"]
        if subprocess.run(install, env=env, capture_output=True, timeout=600).returncode != 0:
            subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, timeout=600)
            subprocess.run(install, env=env, capture_output=True, timeout=600)
        return shutil.which("chromium") or shutil.which("chromium-browser")
    return None


@pytest.fixture(scope="session")
def chromium() -> str:
    path = find_chromium()
    if path is None:
        pytest.skip("no Chromium here and none can be installed (not root, or no apt-get): the browser tests "
                    "need one (apt-get install chromium)")
    return path


@pytest.fixture
def server(registry_copy: Path, tmp_path: Path) -> Iterator[str]:
    """`inferplan ui` itself, on a free loopback port: its base URL."""
    port = free_port()
    log = (tmp_path / "server.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "inferplan.cli", "ui", "--registry", str(registry_copy),
                             "--port", str(port), "--no-browser"], stdout=log, stderr=subprocess.STDOUT,
                            cwd=tmp_path)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(base, proc)
        yield base
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()


def wait_for(base: str, proc: subprocess.Popen[bytes], timeout_s: float = 60) -> None:
    import time

    import httpx

    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"`inferplan ui` exited with {proc.returncode} before it answered")
        try:
            if httpx.get(base + "/runs", timeout=2).status_code == 200:  # noqa: PLR2004
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError(f"`inferplan ui` did not answer at {base} within {timeout_s:g} s")
