"""A real OpenAI-compatible server on loopback for the whole session: `transformers serve` with a tiny model."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from inferplan.measure.local_server import transformers_server
from inferplan.measure.tiny import write_tiny_model


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_model(tmp_path_factory.mktemp("tiny-model"))


@pytest.fixture(scope="session")
def server_url(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The API base URL of a continuously batching server, shared by the session's bench tests."""
    log = tmp_path_factory.mktemp("server") / "serve.log"
    with transformers_server(tiny_model, log=log) as url:
        yield url
