"""Who may use the workbench: a token where it listens beyond this machine, same-origin form posts, and
a Host check on loopback (so a web page elsewhere cannot reach it by DNS rebinding)."""

from __future__ import annotations

import html
import ipaddress
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

COOKIE = "inferplan_token"
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1", "[::1]")


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def new_token() -> str:
    return secrets.token_urlsafe(24)


@dataclass(frozen=True, slots=True)
class Access:
    """The rules one server runs with: ``token`` (None: none needed) and the host it is bound to."""

    token: str | None
    bind_host: str

    def host_allowed(self, host_header: str) -> bool:
        if not is_loopback(self.bind_host):
            return True
        name = host_header.rsplit(":", 1)[0] if not host_header.startswith("[") else host_header.split("]")[0] + "]"
        return is_loopback(name)

    def token_ok(self, headers: dict[str, str], query: dict[str, list[str]]) -> bool:
        if self.token is None:
            return True
        given = [headers.get("authorization", "").removeprefix("Bearer ").strip(), *query.get("token", [])]
        cookie = SimpleCookie(headers.get("cookie", ""))
        if COOKIE in cookie:
            given.append(cookie[COOKIE].value)
        return any(g and secrets.compare_digest(g, self.token) for g in given)


class AccessMiddleware:
    """Refuses, with a plain page and a 4xx status, a request that breaks ``Access``'s rules; a valid
    ``?token=`` sets a cookie and redirects to the same page without it."""

    def __init__(self, app: ASGIApp, access: Access) -> None:
        self.app, self.access = app, access

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        if not self.access.host_allowed(headers.get("host", "")):
            await _plain(send, 400, "This workbench answers on 127.0.0.1 or localhost only (the Host header was "
                         f"'{headers.get('host', '')}').")
            return
        if not self.access.token_ok(headers, query):
            await _plain(send, 401, "This workbench needs its access token: open the URL `inferplan ui` printed "
                         "(it ends in ?token=...), or send the header 'Authorization: Bearer TOKEN'.")
            return
        if scope["method"] == "POST" and not _same_origin(headers):
            await _plain(send, 403, "Refused a form sent from another site (its Origin header does not match "
                         "this workbench).")
            return
        if self.access.token is not None and "token" in query:
            rest = urlencode([(k, v) for k, vs in query.items() if k != "token" for v in vs], doseq=True)
            await send({"type": "http.response.start", "status": 303, "headers": [
                (b"location", (scope["path"] + ("?" + rest if rest else "")).encode()),
                (b"set-cookie", f"{COOKIE}={self.access.token}; HttpOnly; SameSite=Strict; Path=/".encode())]})
            await send({"type": "http.response.body", "body": b""})
            return
        await self.app(scope, receive, send)


def _same_origin(headers: dict[str, str]) -> bool:
    origin = headers.get("origin")
    if not origin or origin == "null":
        return origin is None  # no Origin: not a browser's cross-site form; "null": refuse
    return urlparse(origin).netloc == headers.get("host", "")


async def _plain(send: Send, status: int, text: str) -> None:
    body = f"<!doctype html><title>inferplan: {status}</title><p>{html.escape(text)}</p>".encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/html; charset=utf-8"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
