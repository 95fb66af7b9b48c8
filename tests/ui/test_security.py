"""Access rules: a token beyond loopback, same-origin posts, loopback Host names, a port in use."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from inferplan.api import InputError
from inferplan.ui.app import Settings, create_app
from inferplan.ui.server import access_for, check_port, url_for
from tests.ui.conftest import LOCAL


def test_beyond_loopback_every_request_needs_the_token(registry_copy: Path) -> None:
    app = create_app(Settings(registry=registry_copy, host="0.0.0.0", token="s3cret-token"))  # noqa: S104
    with TestClient(app, base_url=LOCAL, follow_redirects=False) as c:
        missing = c.get("/runs")
        assert missing.status_code == 401 and "access token" in missing.text
        assert c.get("/static/plotly.min.js").status_code == 401
        assert c.get("/runs", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert c.get("/runs", headers={"Authorization": "Bearer s3cret-token"}).status_code == 200
        link = c.get("/runs?kind=sim&token=s3cret-token")  # the URL `inferplan ui` prints
        assert link.status_code == 303 and link.headers["location"] == "/runs?kind=sim"
        assert "inferplan_token=s3cret-token" in link.headers["set-cookie"]
        assert c.get("/runs").status_code == 200  # the cookie it set is sent from now on, as a browser does


def test_a_token_is_generated_and_said_when_none_is_given() -> None:
    said: list[str] = []
    s = access_for(Settings(registry=Path("r.sqlite"), host="0.0.0.0"), said.append)  # noqa: S104
    assert s.token and len(s.token) >= 24  # noqa: PLR2004
    assert "warning" in said[0] and "token was generated" in said[0]
    assert url_for(s).endswith(f"?token={s.token}") and url_for(s).startswith("http://127.0.0.1:8765/")
    local = access_for(Settings(registry=Path("r.sqlite")), said.append)
    assert local.token is None and len(said) == 1


def test_on_loopback_other_host_names_and_cross_site_posts_are_refused(client: TestClient) -> None:
    rebinding = client.get("/runs", headers={"Host": "evil.example:8765"})
    assert rebinding.status_code == 400 and "127.0.0.1 or localhost" in rebinding.text
    assert client.get("/runs", headers={"Host": "localhost:8765"}).status_code == 200
    cross = client.post("/fit/record", data={"model": "qwen3-8b"}, headers={"Origin": "http://evil.example"})
    assert cross.status_code == 403
    same = client.post("/fit/record", data={"model": "qwen3-8b", "device": "l4"},
                       headers={"Origin": LOCAL})
    assert same.status_code == 303


def test_a_port_in_use_is_a_clear_error() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(InputError, match=f"cannot listen on 127.0.0.1:{port}.*use --port"):
            check_port("127.0.0.1", port)
    with pytest.raises(InputError, match="--port must be between 1 and 65535"):
        check_port("127.0.0.1", 70000)
