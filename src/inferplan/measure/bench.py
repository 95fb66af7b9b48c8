"""Replay a workload against an OpenAI-compatible endpoint and record what every request saw.

One asyncio task per request, started at its arrival time (or when a concurrency
slot frees). Each task streams its response and notes the arrival time of every
chunk that carries text, so TTFT, each inter-token gap and the end-to-end time
are measured on the client, as a user would see them. A failure (refused
connection, timeout, an HTTP error, a stream that is not OpenAI-shaped, a stream
cut short before its finish_reason or [DONE], or one with fewer tokens than the
server owed) becomes that request's record, as failed with the reason; it never
stops the run.

Before the run, one probe request checks that the endpoint answers like an
OpenAI server and whether it accepts ``ignore_eos`` (vLLM and SGLang do; others
reject unknown fields). If the probe fails, the run cannot start: an InputError.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import httpx
import numpy as np

from inferplan.errors import InputError
from inferplan.workload.request import Workload

Api = Literal["completions", "chat"]

# Common English words: one token each in the BPE vocabularies of Llama, Qwen, Mistral and GPT tokenizers,
# so a prompt of N words is close to N tokens. The server's usage count is recorded when it reports one.
PROMPT_WORDS = tuple(
    "the of and to in is that for it as was with be by on not he this are or his from at which but have an they "
    "you were her all she there would their we him been has when who will more no if out so said what up its about "
    "into than them can only other new some could time these two may then do first any my now such like our over "
    "man me even most made after also did many before must through back years where much your way well down should "
    "because each just those people how too little state good very make world still own see men work long get here "
    "between both life being under never day same another know while last might us great old year off come since "
    "against go came right used take three".split()
)


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where and how to send requests."""

    base_url: str
    model: str = ""
    api: Api = "completions"
    timeout_s: float = 120.0
    api_key: str | None = None
    ignore_eos: bool | None = None  # None: use it if the server accepts it

    @property
    def path(self) -> str:
        return "/completions" if self.api == "completions" else "/chat/completions"

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}


@dataclass(slots=True)
class RequestRecord:
    """What one request saw. Times are seconds from the start of the run (client clock)."""

    request_id: int
    scheduled_s: float
    input_tokens: int  # what the workload asked for
    requested_output_tokens: int
    sent_s: float = float("nan")
    status: str = "pending"  # pending | finished | failed
    error: str = ""
    prompt_tokens: int = -1  # as the server counted them (usage), -1 if not reported
    output_tokens: int = 0  # as the server counted them, else the number of text chunks
    finish_reason: str = ""
    token_times_s: list[float] = field(default_factory=list)  # arrival of each text chunk, from sent_s
    done_s: float = float("nan")

    @property
    def ttft_s(self) -> float:
        return self.token_times_s[0] if self.token_times_s else float("nan")

    @property
    def e2e_s(self) -> float:
        return self.done_s - self.sent_s

    @property
    def gaps_s(self) -> list[float]:
        t = self.token_times_s
        return [b - a for a, b in zip(t, t[1:], strict=False)]

    @property
    def tpot_s(self) -> float:
        if self.status != "finished" or self.output_tokens < 2 or not self.token_times_s:
            return float("nan")
        return (self.token_times_s[-1] - self.token_times_s[0]) / (self.output_tokens - 1)


def prompt_text(request_id: int, tokens: int, prefix_group: int, prefix_tokens: int, seed: int) -> str:
    """``tokens`` words; requests of one prefix group share their first ``prefix_tokens`` words."""
    shared = min(prefix_tokens, tokens) if prefix_group >= 0 else 0
    parts: list[str] = []
    if shared:
        g = np.random.default_rng([seed, 1, prefix_group])
        parts = [PROMPT_WORDS[i] for i in g.integers(0, len(PROMPT_WORDS), shared)]
    r = np.random.default_rng([seed, 0, request_id])
    parts += [PROMPT_WORDS[i] for i in r.integers(0, len(PROMPT_WORDS), tokens - shared)]
    return " ".join(parts)


def request_body(ep: Endpoint, prompt: str, max_tokens: int, ignore_eos: bool) -> dict[str, Any]:
    body: dict[str, Any] = {"model": ep.model, "max_tokens": max_tokens, "stream": True, "temperature": 0.0}
    if ep.api == "completions":
        body["prompt"] = prompt
    else:
        body["messages"] = [{"role": "user", "content": prompt}]
    body["stream_options"] = {"include_usage": True}
    if ignore_eos:
        body["ignore_eos"] = True
    return body


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


async def probe(ep: Endpoint) -> tuple[Endpoint, list[str]]:
    """Check the endpoint before a run; fill in the model name and whether ``ignore_eos`` is accepted.

    Returns the endpoint to use and notes for the user. Raises InputError when a run cannot start.
    """
    notes: list[str] = []
    timeout_s = ep.timeout_s  # the run's own; the probe waits longer
    # at least a minute: a server's first request often loads or warms the model
    async with httpx.AsyncClient(base_url=ep.base_url, timeout=httpx.Timeout(max(ep.timeout_s, 60.0))) as client:
        model = ep.model
        try:
            resp = await client.get("/models", headers=ep.headers())
        except httpx.ConnectError as exc:
            raise InputError(f"cannot reach {ep.base_url}: {exc}. Is the server running and listening there? "
                             "(the URL is the API base, e.g. http://127.0.0.1:8000/v1)") from None
        except httpx.HTTPError as exc:
            raise InputError(f"{ep.base_url}: {type(exc).__name__}: {exc}") from None
        if resp.status_code == 200:
            try:
                ids = [str(m["id"]) for m in resp.json().get("data", [])]
            except (ValueError, AttributeError, KeyError, TypeError):
                ids = []
            if not model and ids:
                model = ids[0]
                notes.append(f"model not given; using the server's first model, {model}")
            elif model and ids and model not in ids:
                notes.append(f"the server lists {', '.join(ids[:5])}; {model!r} is not among them")
        if not model:
            raise InputError(f"{ep.base_url}/models lists no model; pass --model NAME")
        ep = replace(ep, model=model, timeout_s=max(ep.timeout_s, 60.0))
        tries = [True, False] if ep.ignore_eos is None else [ep.ignore_eos]
        last = ""
        for ignore in tries:
            rec = RequestRecord(-1, 0.0, 4, 2)
            await stream_one(client, ep, request_body(ep, prompt_text(0, 4, -1, 0, 0), 2, ignore), rec,
                             time.perf_counter)
            if rec.status == "finished":
                if ep.ignore_eos is None and not ignore:
                    notes.append("the server rejects or does not honour ignore_eos; outputs may stop before "
                                 "max_tokens (recorded as received)")
                return replace(ep, timeout_s=timeout_s, ignore_eos=ignore), notes
            last = rec.error
            if "ignore_eos" not in last:
                break
    if last.startswith("HTTP 404"):
        raise InputError(f"{ep.base_url}{ep.path} does not exist (HTTP 404): not an OpenAI-compatible endpoint? "
                         "The URL should be the API base, usually ending in /v1; try --api chat or --api completions")
    raise InputError(f"{ep.base_url}{ep.path}: the probe request failed: {last}")


@dataclass(frozen=True, slots=True)
class ReplayOptions:
    concurrency: int | None = None  # at most this many requests in flight
    honour_arrivals: bool = True  # False with a concurrency cap: a closed loop, next request as soon as a slot frees
    seed: int = 0


async def replay(ep: Endpoint, wl: Workload, opts: ReplayOptions, records: list[RequestRecord],
                 on_done: Callable[[RequestRecord], None] | None = None) -> float:
    """Send every request of ``wl``; ``records`` fills as they are created, so a caller keeps partial results.

    Returns the wall-clock span of the run in seconds.
    """
    n = len(wl)
    cap = opts.concurrency or n
    limits = httpx.Limits(max_connections=cap, max_keepalive_connections=cap)
    sem = asyncio.Semaphore(cap)
    arrivals = wl.arrival_s if opts.honour_arrivals else np.zeros(n)
    start = time.perf_counter()

    def clock() -> float:
        return time.perf_counter() - start

    async with httpx.AsyncClient(base_url=ep.base_url, timeout=httpx.Timeout(ep.timeout_s, connect=10.0),
                                 limits=limits) as client:

        async def run(rec: RequestRecord, body: dict[str, Any]) -> None:
            async with sem:
                await stream_one(client, ep, body, rec, clock)
            if on_done:
                on_done(rec)

        tasks = []
        for i in range(n):
            delay = float(arrivals[i]) - clock()
            if delay > 0:
                await asyncio.sleep(delay)
            rec = RequestRecord(i, float(arrivals[i]), int(wl.input_tokens[i]), int(wl.output_tokens[i]))
            records.append(rec)
            text = prompt_text(i, rec.input_tokens, int(wl.prefix_group[i]), int(wl.prefix_tokens[i]), opts.seed)
            body = request_body(ep, text, rec.requested_output_tokens, bool(ep.ignore_eos))
            tasks.append(asyncio.create_task(run(rec, body)))
        await asyncio.gather(*tasks)
    return clock()
