"""Serving the workbench: check the address, choose the access rules, start uvicorn, open the browser."""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
import webbrowser
from collections.abc import Callable
from dataclasses import replace
from types import FrameType

import uvicorn

from inferplan.api import InputError
from inferplan.ui.app import Settings, create_app
from inferplan.ui.security import is_loopback, new_token


def access_for(settings: Settings, say: Callable[[str], None]) -> Settings:
    """Beyond loopback a token is required: the one given, or a new one (said, with a warning)."""
    if is_loopback(settings.host) or settings.token:
        if not is_loopback(settings.host):
            say(f"warning: listening on {settings.host}, reachable from other machines; every request needs the token")
        return settings
    say(f"warning: listening on {settings.host}, reachable from other machines; a token was generated and every "
        "request needs it (pass --token to choose your own)")
    return replace(settings, token=new_token())


def check_port(host: str, port: int) -> None:
    if not 0 < port < 65536:  # noqa: PLR2004
        raise InputError(f"--port must be between 1 and 65535, got {port}")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            raise InputError(f"cannot listen on {host}:{port}: {exc.strerror} (another program has the port? "
                             "use --port N)") from None


def has_display() -> bool:
    """Whether a graphical browser can open here (on a Linux server without one, webbrowser would start a
    text browser in this terminal)."""
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def url_for(settings: Settings) -> str:
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host  # noqa: S104
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{settings.port}/" + (f"?token={settings.token}" if settings.token else "")


class _Server(uvicorn.Server):
    """uvicorn's server, stopping on Ctrl-C without raising it again afterwards (the CLI says what was kept)."""

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.should_exit and sig == signal.SIGINT:
            self.force_exit = True  # a second Ctrl-C: stop waiting for open connections
        self.should_exit = True


def serve(settings: Settings, *, open_browser: bool, say: Callable[[str], None]) -> bool:
    """Run until stopped (Ctrl-C); False when the server could not start."""
    settings = access_for(settings, say)
    check_port(settings.host, settings.port)
    app = create_app(settings)
    server = _Server(uvicorn.Config(app, host=settings.host, port=settings.port, log_level="warning",
                                           lifespan="on", timeout_graceful_shutdown=5))
    url = url_for(settings)

    def announce() -> None:
        while not server.started and not server.should_exit:
            threading.Event().wait(0.05)
        if server.started:
            say(f"inferplan workbench at {url} (registry {settings.registry}); Ctrl-C stops it")
            if open_browser and has_display():
                webbrowser.open(url)
            elif open_browser:
                say("no display here to open a browser on; open the address above in one")

    threading.Thread(target=announce, daemon=True).start()
    server.run()
    return server.started
