"""An OpenAI-compatible server on loopback that misbehaves on purpose, one way per request.

A request's prompt length picks how it is answered (``PROMPT_WORDS``), so a bench workload
written as a trace decides, request by request, what goes wrong. Any other prompt, such as the
probe `inferplan bench` sends first, gets a well-behaved stream. Streams have no length framing:
the body ends when the server closes the connection, as a plain SSE server's does.
"""

from __future__ import annotations

import http.server
import json
import socket
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MODEL = "misbehaving"

# mode -> prompt words that select it; a ":k" suffix is the number of tokens sent before things go wrong
PROMPT_WORDS = {
    "ok": 10,
    "cut:3": 11,  # three tokens, then a clean close: no finish_reason, no [DONE]
    "reset:3": 12,  # three tokens, then a TCP reset
    "garbage:2": 13,  # two tokens, then an event that is not JSON
    "no-choices:2": 14,  # two tokens, then a JSON event without "choices"
    "stall:2": 15,  # two tokens, then nothing for ``stall_s``
    "http:429": 16,
    "http:500": 17,
    "http:503": 18,
    "slow-headers": 19,  # the status line only after ``stall_s``
    "length:3": 20,  # three tokens, then finish_reason "length" and [DONE]
    "stop:3": 21,  # three tokens, then finish_reason "stop" and [DONE]
    "done-only": 22,  # every token, then [DONE] without any finish_reason
    "length:0": 23,  # no token at all, then finish_reason "length" and [DONE]
    "not-streamed": 24,  # one JSON completion, as if "stream": true had been ignored
}
MODE_OF = {words: mode for mode, words in PROMPT_WORDS.items()}
ERROR_BODIES = {
    429: {"error": {"message": "rate limit reached", "code": 429}},
    500: {"error": {"message": "CUDA out of memory", "code": 500}},
    503: {"error": {"message": "server is loading the model", "code": 503}},
}


def write_trace(path: Path, modes: list[str], output_tokens: int = 16, gap_s: float = 0.02) -> Path:
    """A generic trace whose request i is answered in ``modes[i]``'s way."""
    lines = ["arrival_s,input_tokens,output_tokens"]
    lines += [f"{i * gap_s:.3f},{PROMPT_WORDS[m]},{output_tokens}" for i, m in enumerate(modes)]
    path.write_text("\n".join(lines) + "\n")
    return path


@dataclass(frozen=True, slots=True)
class Request:
    """What the server read from one POST."""

    chat: bool
    words: int
    max_tokens: int
    ignore_eos: bool


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, accept_ignore_eos: bool, stall_s: float, early_stop: int | None,
                 bodies: list[dict[str, Any]] | None = None) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.bodies = bodies  # every POST body, where the caller keeps them
        self.accept_ignore_eos = accept_ignore_eos
        self.early_stop = early_stop
        self.stall_s = stall_s
        self.stop = threading.Event()  # set at shutdown: a stalled answer gives up at once


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        if self.path.endswith("/models"):
            self._json(200, {"object": "list", "data": [{"id": MODEL, "object": "model"}]})
        else:
            self._json(404, {"error": "not found"})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body: dict[str, Any] = json.loads(self.rfile.read(length))
        if self.server.bodies is not None:
            self.server.bodies.append(body)
        chat = self.path.endswith("/chat/completions")
        prompt = body["messages"][-1]["content"] if chat else body["prompt"]
        req = Request(chat, len(prompt.split()), int(body["max_tokens"]), bool(body.get("ignore_eos")))
        if req.ignore_eos and not self.server.accept_ignore_eos:
            self._json(400, {"error": {"message": "unknown field: ignore_eos"}})
            return
        mode = MODE_OF.get(req.words, "ok")
        if mode == "ok" and self.server.early_stop is not None:
            mode = f"stop:{self.server.early_stop}"  # even with ignore_eos: a server that ignores the field
        try:
            self._answer(mode, req)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up first (a stall, slow headers): what the test wanted

    def _answer(self, mode: str, req: Request) -> None:
        name, _, k = mode.partition(":")
        if name == "http":
            self._json(int(k), ERROR_BODIES[int(k)])
            return
        if name == "not-streamed":
            self._json(200, self._token(req, " w0 w1", "length"))
            return
        if name == "slow-headers" and self.server.stop.wait(self.server.stall_s):
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        if req.chat:
            self._event({"choices": [{"index": 0, "delta": {"role": "assistant"}, "finish_reason": None}]})
        sent = int(k) if k else req.max_tokens
        for i in range(sent):
            self._event(self._token(req, f" w{i}", None))
        self._misbehave(name, req, sent)

    def _misbehave(self, name: str, req: Request, sent: int) -> None:
        if name == "cut":
            return  # the connection closes after the handler returns
        if name == "reset":
            self.server.stop.wait(0.3)  # let the client read the tokens before the reset discards them
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            return
        if name == "garbage":
            self.wfile.write(b"data: this is not json\n\n")
            return
        if name == "no-choices":
            self._event({"id": "cmpl-x", "object": "text_completion"})
            return
        if name == "stall" and self.server.stop.wait(self.server.stall_s):
            return
        if name != "done-only":
            self._event(self._token(req, "", "stop" if name == "stop" else "length"))
            self._event({"choices": [], "usage": {"prompt_tokens": req.words, "completion_tokens": sent,
                                                  "total_tokens": req.words + sent}})
        self.wfile.write(b"data: [DONE]\n\n")

    @staticmethod
    def _token(req: Request, text: str, finish: str | None) -> dict[str, Any]:
        choice: dict[str, Any] = {"index": 0, "finish_reason": finish}
        if req.chat:
            choice["delta"] = {"content": text} if text else {}
        else:
            choice["text"] = text
        return {"id": "cmpl-x", "object": "text_completion", "model": MODEL, "choices": [choice]}

    def _event(self, obj: dict[str, Any]) -> None:
        self.wfile.write(b"data: " + json.dumps(obj).encode() + b"\n\n")

    def _json(self, code: int, obj: dict[str, Any]) -> None:
        data = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def misbehaving_server(*, accept_ignore_eos: bool = True, stall_s: float = 3.0,
                       early_stop: int | None = None, bodies: list[dict[str, Any]] | None = None) -> Iterator[str]:
    """Serve on 127.0.0.1 (a port the OS picks) in a thread; yields the API base URL.

    ``accept_ignore_eos=False`` answers a request carrying ignore_eos with HTTP 400, as transformers
    serve does; ``early_stop=k`` ends every well-behaved stream with "stop" after k tokens; ``bodies`` collects
    every request body the server read.
    """
    srv = _Server(accept_ignore_eos, stall_s, early_stop, bodies)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}/v1"
    finally:
        srv.stop.set()
        srv.shutdown()
        srv.server_close()
        thread.join(timeout=5)
