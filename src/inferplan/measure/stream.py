"""One streamed response, read as a user would see it: every text chunk timed, a cut or malformed stream named.

A failure (refused connection, timeout, an HTTP error, a stream that is not OpenAI-shaped,
a stream cut short before its finish_reason or [DONE], or one with fewer tokens than the
server owed) becomes the request's record, as failed with the reason; it never raises.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from inferplan.measure.request_record import Endpoint, RequestRecord


class StreamError(Exception):
    """The response was not a complete OpenAI-style event stream; the message is the record's reason."""


@dataclass(slots=True)
class _Stream:
    """What a response showed so far: enough to tell a complete stream from a cut or malformed one."""

    asked: int  # max_tokens of the request
    forced: bool  # ignore_eos was sent, so the server owes ``asked`` tokens
    headers: bool = False
    content_type: str = ""
    events: int = 0  # "data:" lines
    chunks: int = 0  # events that carried text
    done: bool = False  # the "data: [DONE]" terminator arrived
    closing_s: float | None = None  # arrival of an event that ends the stream without text

    def progress(self) -> str:
        return f"{self.chunks} of {self.asked} tokens"


def _is_token_event(obj: dict[str, Any]) -> bool:
    """Whether an event carries generated text. A token may decode to an empty string (a special token,
    half a multi-byte character), so an empty text counts too, except on the closing event (it has a
    finish_reason) and on a chat stream's opening event (it has the role)."""
    choices = obj.get("choices")
    if choices is None and isinstance(obj.get("usage"), dict):
        return False  # a closing usage event; OpenAI's carries "choices": [], some servers' none
    if not isinstance(choices, list):
        raise StreamError(f"not OpenAI-shaped: an event without 'choices': {json.dumps(obj)[:120]}")
    if not choices:
        return False
    c = choices[0]
    if not isinstance(c, dict):
        raise StreamError(f"not OpenAI-shaped: a choice that is not an object: {json.dumps(c)[:120]}")
    if "text" in c:
        text = c["text"]
    else:
        delta = c.get("delta") or {}
        if not isinstance(delta, dict):
            raise StreamError(f"not OpenAI-shaped: a delta that is not an object: {json.dumps(delta)[:120]}")
        if "role" in delta and not delta.get("content"):
            return False
        text = delta.get("content", delta.get("reasoning_content"))
    if text:
        return True
    return text is not None and not c.get("finish_reason")


def _count(value: Any, default: int) -> int:
    """A usage count as an int; a server's odd value (null, a string) must not end the run."""
    try:
        return int(value) if value is not None else default
    except (TypeError, ValueError):
        return default


def _take_event(payload: str, rec: RequestRecord, st: _Stream, clock: Callable[[], float]) -> None:
    """Note one event's text, finish_reason and usage in ``rec``; raise StreamError on a malformed one."""
    try:
        obj = json.loads(payload)
    except json.JSONDecodeError:
        raise StreamError(f"not JSON: the event after {st.progress()} is {payload[:80]!r}") from None
    if not isinstance(obj, dict):
        raise StreamError(f"not OpenAI-shaped: an event that is not a JSON object: {payload[:80]!r}")
    if "error" in obj:
        raise StreamError(f"server error in stream: {str(obj['error'])[:300]}")
    token = _is_token_event(obj)
    if token:
        rec.token_times_s.append(clock() - rec.sent_s)
        st.chunks += 1
    choices = obj.get("choices") or []
    if choices and choices[0].get("finish_reason"):
        rec.finish_reason = str(choices[0]["finish_reason"])
        if not token:
            st.closing_s = clock() - rec.sent_s
    usage = obj.get("usage")
    if isinstance(usage, dict):
        rec.prompt_tokens = _count(usage.get("prompt_tokens"), -1) or -1
        rec.output_tokens = _count(usage.get("completion_tokens"), 0)


def _verdict(rec: RequestRecord, st: _Stream) -> str:
    """Why a stream that ended cleanly is still not a finished request; "" when it is one."""
    got, asked = rec.output_tokens, st.asked
    if not st.events and "event-stream" not in st.content_type:
        return (f"not an event stream: the response had no 'data:' lines "
                f"(Content-Type {st.content_type or 'not given'})")
    if not rec.finish_reason and not st.done:
        return f"truncated: the stream closed after {got} of {asked} tokens without finish_reason or [DONE]"
    if not rec.token_times_s:
        return "no text: the stream ended without any text"
    ended = f"finish_reason {rec.finish_reason!r}" if rec.finish_reason else "no finish_reason"
    if st.forced and got < asked:
        return f"truncated: {got} of {asked} tokens although ignore_eos asked for all {asked} ({ended})"
    if rec.finish_reason == "length" and got < asked:
        return f"truncated: finish_reason 'length' after {got} of {asked} tokens"
    return ""


async def _http_error(resp: httpx.Response) -> str:
    """The status code and the start of the body: what a user needs to see why the server refused."""
    text = " ".join((await resp.aread()).decode(errors="replace").split())
    return f"HTTP {resp.status_code}: {text[:300] or '(empty body)'}"


def _cause(exc: BaseException) -> str:
    """The exception and the first message down its chain: httpx's read errors often carry none themselves
    (a reset shows as ``ReadError('')`` caused by ``ConnectionResetError``)."""
    seen: BaseException | None = exc
    for _ in range(8):  # a chain can loop; a few links are enough
        if seen is None:
            break
        text = seen.strerror if isinstance(seen, OSError) and seen.strerror else str(seen)
        if text:
            return f"{type(exc).__name__}: {text}"
        seen = seen.__cause__ or seen.__context__
    return type(exc).__name__


def _transport_reason(exc: httpx.HTTPError, ep: Endpoint, st: _Stream) -> str:
    """Name what the network did: no connection, slow headers, a stall between chunks, a broken connection."""
    detail = _cause(exc)
    if isinstance(exc, httpx.ConnectError):
        return f"connection failed: {exc}"
    if isinstance(exc, httpx.ConnectTimeout):
        return "connection failed: no connection within the connect timeout"
    if isinstance(exc, httpx.ReadTimeout):
        if not st.headers:
            return f"slow headers: no response headers within {ep.timeout_s:g} s"
        return f"stalled: no data for {ep.timeout_s:g} s after {st.progress()}"
    if isinstance(exc, httpx.TimeoutException):
        return f"timeout: {detail} (limit {ep.timeout_s:g} s)"
    if isinstance(exc, httpx.TransportError):
        when = f"after {st.progress()}" if st.headers else "before the response headers"
        return f"connection lost: the connection broke {when} ({detail})"
    return detail


async def stream_one(client: httpx.AsyncClient, ep: Endpoint, body: dict[str, Any], rec: RequestRecord,
                     clock: Callable[[], float]) -> None:
    """Send one request and fill ``rec``; every failure is recorded in ``rec``, never raised.

    A request counts as finished only when its stream ended as OpenAI streams end (a finish_reason
    or the [DONE] terminator) and it holds the tokens it was owed; otherwise it failed, with the
    tokens received kept so the partial timing stays visible.
    """
    rec.sent_s = clock()
    st = _Stream(asked=_count(body.get("max_tokens"), 0), forced=bool(body.get("ignore_eos")))
    try:
        async with client.stream("POST", ep.path, json=body, headers=ep.headers()) as resp:
            st.headers, st.content_type = True, resp.headers.get("content-type", "")
            if resp.status_code != 200:
                raise StreamError(await _http_error(resp))
            async for line in resp.aiter_lines():
                if not line.startswith("data:"):
                    continue
                st.events += 1
                payload = line[5:].strip()
                if payload == "[DONE]":
                    st.done = True
                    break
                _take_event(payload, rec, st, clock)
        rec.done_s = clock()
        if rec.output_tokens == st.chunks + 1 and st.closing_s is not None:
            # some servers (transformers serve) send the last token's text late, on the closing event
            rec.token_times_s.append(st.closing_s)
        rec.output_tokens = rec.output_tokens or len(rec.token_times_s)
        reason = _verdict(rec, st)
        if reason:
            raise StreamError(reason)
        rec.status = "finished"
    except StreamError as exc:
        _fail(rec, str(exc), st, clock)
    except httpx.HTTPError as exc:
        _fail(rec, _transport_reason(exc, ep, st), st, clock)
    except Exception as exc:  # a request's failure, whatever it is, must not stop the run
        _fail(rec, f"unexpected: {type(exc).__name__}: {exc}", st, clock)


def _fail(rec: RequestRecord, reason: str, st: _Stream, clock: Callable[[], float]) -> None:
    rec.status = "failed"
    rec.error = reason or "unknown error"
    rec.output_tokens = rec.output_tokens or st.chunks  # what arrived, for the record; the CSV replays the ask
    if math.isnan(rec.done_s):
        rec.done_s = clock()
