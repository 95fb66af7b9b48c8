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
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import httpx
import numpy as np

from inferplan.errors import InputError
from inferplan.measure.request_record import Endpoint, RequestRecord
from inferplan.measure.stream import stream_one
from inferplan.workload.request import Workload

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


def request_body(ep: Endpoint, prompt: str, max_tokens: int, ignore_eos: bool,
                 priority: int | None = None) -> dict[str, Any]:
    """The request as the engines' OpenAI servers read it; ``priority`` (lower first, vLLM's and SGLang's
    request field) where the workload's classes differ in it, as the plan's launch.sh tells clients to send.
    vLLM refuses a nonzero priority unless the server schedules by priority (``priority`` in
    ``vllm/entrypoints/openai/protocol.py``): such refusals are recorded as failures with the server's words."""
    body: dict[str, Any] = {"model": ep.model, "max_tokens": max_tokens, "stream": True, "temperature": 0.0}
    if priority is not None:
        body["priority"] = priority
    if ep.api == "completions":
        body["prompt"] = prompt
    else:
        body["messages"] = [{"role": "user", "content": prompt}]
    body["stream_options"] = {"include_usage": True}
    if ignore_eos:
        body["ignore_eos"] = True
    return body


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
    mixed = wl.mixes_priorities  # classes of different priority: each request says its own
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
            body = request_body(ep, text, rec.requested_output_tokens, bool(ep.ignore_eos),
                                int(wl.priority[i]) if mixed else None)
            tasks.append(asyncio.create_task(run(rec, body)))
        await asyncio.gather(*tasks)
    return clock()
