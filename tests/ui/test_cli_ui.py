"""`inferplan ui` in a terminal: where it listens, the token beyond loopback, Ctrl-C, a busy port."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import pexpect

from tests.cli.conftest import terminal
from tests.ui.conftest import free_port


def test_ui_serves_until_ctrl_c_and_says_what_was_kept(tmp_path: Path) -> None:
    port = free_port()
    child = terminal(tmp_path, "ui", "--port", str(port), "--no-browser", timeout=90)
    child.expect(r"inferplan workbench at (http://127\.0\.0\.1:\d+/)")
    url = child.match.group(1)
    assert url == f"http://127.0.0.1:{port}/"
    assert httpx.get(url + "runs", timeout=10).status_code == 200  # noqa: PLR2004
    assert "No runs" in httpx.get(url + "runs", timeout=10).text
    child.sendintr()
    child.expect("stopped the workbench; every finished run is kept in")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 130  # noqa: PLR2004


def test_beyond_loopback_it_warns_and_prints_a_url_with_a_token(tmp_path: Path) -> None:
    port = free_port()
    child = terminal(tmp_path, "ui", "--host", "0.0.0.0", "--port", str(port), "--no-browser", timeout=90)
    child.expect("warning: listening on 0.0.0.0, reachable from other machines; a token was generated")
    child.expect(r"at (http://127\.0\.0\.1:\d+/)\?token=([\w-]+)")
    base, token = child.match.group(1), child.match.group(2)
    assert httpx.get(base + "runs", timeout=10).status_code == 401  # noqa: PLR2004
    assert httpx.get(base + "runs", headers={"Authorization": f"Bearer {token}"}, timeout=10).status_code == 200  # noqa: PLR2004
    child.sendintr()
    child.expect(pexpect.EOF)


def test_a_busy_port_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        child = terminal(tmp_path, "ui", "--port", str(port), "--no-browser", timeout=60)
        child.expect(pexpect.EOF)
        child.close()
    text = child.before or ""
    assert child.exitstatus == 2 and f"cannot listen on 127.0.0.1:{port}" in text and "--port" in text  # noqa: PLR2004
    assert "Traceback" not in text


def test_without_a_display_it_says_so_instead_of_opening_a_text_browser(tmp_path: Path) -> None:
    child = terminal(tmp_path, "ui", "--port", str(free_port()), timeout=90, DISPLAY="", WAYLAND_DISPLAY="")
    child.expect("inferplan workbench at")
    child.expect("no display here to open a browser on; open the address above in one")
    child.sendintr()
    child.expect(pexpect.EOF)
