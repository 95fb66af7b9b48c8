"""Multi-turn and agentic sessions: prompts that grow turn by turn and share the earlier turns as a prefix.

A session's first prompt is a system prompt every session shares plus its first message; each later
turn's prompt is the previous prompt, the previous response and a new message (a user's, or a tool's
output in an agent's loop). Turns arrive one think time apart (exponential gaps: the open-loop form of a
user or a tool, since a trace records arrivals, not a closed loop on the server's latency: the gap is the
one traces record between a session's consecutive arrivals, so it includes the previous response; a
slow server does not hold the next turn back, as a real user or agent would). Sessions start
as a Poisson process at the rate that gives the asked request rate.

Shared content is named as a prefix chain (``Workload.prefix_chain``): chunk j of a prompt (tokens
[j C, (j + 1) C)) has an id that is the same wherever that content is the same — the system prompt's
chunks across every session, a session's earlier chunks across its turns — so prefix caching, KV tiers
and affinity routing see the reuse a real conversation offers. A request's chain runs past its prompt over
its response, whose full blocks the engine then caches for the next turn (``Replica.register_output_blocks``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from inferplan.errors import InputError
from inferplan.workload.request import Workload
from inferplan.workload.synthetic import Lengths, Rng

CHAIN_TOKENS = 64  # tokens per chain chunk: a multiple of every engine's KV block (16) and small enough to follow turns
_SESSION_IDS = 1 << 24  # chain ids of session s start at (s + 1) * this; the shared system prompt's are below


@dataclass(frozen=True, slots=True)
class SessionShape:
    """What one kind of session looks like, every figure from a cited source."""

    description: str
    rate: float  # requests per second when none is asked for
    turns: Lengths  # turns per session
    first_input: Lengths  # the first message (after the system prompt)
    new_input: Lengths  # what each later turn adds: a user's message, or a tool's output
    outputs: Lengths  # response tokens per turn
    think_median_s: float  # the gap between a session's consecutive arrivals: lognormal, this median
    think_sigma: float  # and this sigma (of its log)
    system_tokens: int  # a system prompt every session shares
    max_context: int  # a session ends before its prompt would pass this
    source: str


def synthesize_sessions(rng: Rng, shape: SessionShape, *, n: int, rate: float, name: str,
                        turns: int | None = None, think_s: float | None = None) -> Workload:
    """``n`` requests (the first ``n`` from time 0) at a mean ``rate`` per second. ``turns``/``think_s``:
    every session that many turns, and that median gap between turns, instead of the shape's.

    Sessions start as a Poisson process at ``rate`` over the turns a session really has (after the context
    limit ends some early), from before time 0 by the run's length or 99% of sessions' length, whichever is
    longer, so the run starts in the steady state: its first requests include later turns of sessions
    already under way."""
    if rate <= 0 or not np.isfinite(rate):
        raise InputError(f"--rate must be a positive number of requests per second, got {rate}")
    span = n / rate  # the run's expected length
    sessions: list[_Session] = []
    total, lasting = 0, [0.0]
    warm = span  # sessions start this long before 0: at least the run, and most sessions' length
    while len(sessions) < rate / (total / max(len(sessions), 1) or 1.0) * (warm + 1.5 * span) + 8:
        one = _session(rng, shape, turns, shape.think_median_s if think_s is None else think_s)
        sessions.append(one)
        total += len(one[0])
        lasting.append(float(one[0][-1]) if len(one[0]) else 0.0)
        if len(sessions) <= 64 or len(sessions) % 64 == 0:
            warm = max(span, float(np.quantile(lasting, 0.99)))
    starts = -warm + np.cumsum(rng.exponential(total / len(sessions) / rate, len(sessions)))
    arrival, inputs, outputs, session, chains = [], [], [], [], []
    for s, ((times, prompts, outs), start) in enumerate(zip(sessions, starts.tolist(), strict=True)):
        chain: tuple[int, ...] = ()
        for t, prompt, out in zip((start + times).tolist(), prompts, outs, strict=True):
            chain = _extend(chain, s, prompt + out, shape.system_tokens)  # the response too: the next turn has it
            if t >= 0:
                arrival.append(t)
                inputs.append(prompt)
                outputs.append(out)
                session.append(s)
                chains.append(chain)
    order = np.argsort(np.asarray(arrival), kind="stable")[:n]
    return Workload.build(
        np.asarray(arrival)[order], np.asarray(inputs)[order], np.asarray(outputs)[order],
        session_id=np.asarray(session)[order], name=name,
        source=f"synthetic sessions ({shape.description}; rate {rate:g}/s)",
        prefix_chain=tuple(chains[i] for i in order.tolist()), chain_block_tokens=CHAIN_TOKENS,
        chain_covers_outputs=True)


_Session = tuple[np.ndarray, list[int], list[int]]  # each turn's time from the session's start, prompt, output


def _session(rng: Rng, shape: SessionShape, turns: int | None, think: float) -> _Session:
    """One session's turns: prompts that grow by each response and the next message, until the context limit."""
    count = turns or int(shape.turns.sample(rng, 1)[0])
    gaps = think * rng.lognormal(0.0, shape.think_sigma, count) if think > 0 else np.zeros(count)
    gaps[0] = 0.0
    outs = shape.outputs.sample(rng, count).tolist()
    adds = shape.new_input.sample(rng, count).tolist()
    prompt = shape.system_tokens + int(shape.first_input.sample(rng, 1)[0])
    prompts: list[int] = []
    for t in range(count):
        if prompt + outs[t] > shape.max_context:
            break
        prompts.append(prompt)
        prompt += outs[t] + adds[t]
    kept = len(prompts)
    return np.cumsum(gaps)[:kept], prompts, outs[:kept]


def _extend(chain: tuple[int, ...], session: int, prompt: int, system_tokens: int) -> tuple[int, ...]:
    """The previous turn's chain with ids for the prompt's further full chunks: the system prompt's shared,
    the rest the session's own. Built on the previous tuple, so a session's turns share their id objects."""
    shared = system_tokens // CHAIN_TOKENS
    base = (session + 1) * _SESSION_IDS
    return chain + tuple(j if j < shared else base + j for j in range(len(chain), prompt // CHAIN_TOKENS))


# Sources: docs/workloads.md gives each figure's source and setup. Lognormal parameters are (log of the median,
# sigma), sigma from a published percentile: sigma = ln(p90 / p50) / 1.2816.
SESSION_PRESETS: dict[str, SessionShape] = {
    "multi-turn": SessionShape(
        "multi-turn chat: ShareGPT turns, LMSYS-Chat-1M message lengths, Bailian think times",
        rate=5.5,
        turns=Lengths("lognormal", 1.0986, 0.58, low=1, high=40),  # ShareGPT: median 3, mean 3.55, p90 7
        first_input=Lengths("lognormal", 3.43, 1.28, low=1, high=8_192),  # LMSYS: 69.8 +- 143.5 tokens
        new_input=Lengths("lognormal", 3.43, 1.28, low=1, high=8_192),
        outputs=Lengths("lognormal", 5.019, 0.859, low=1, high=2_048),  # Azure conv fit: mean 219 (LMSYS 214.5)
        think_median_s=110.6, think_sigma=1.46,  # Bailian Trace A chat: p50 110.6 s, p90 718.5 s
        system_tokens=0, max_context=32_768,
        source="ShareGPT_V3 turn counts; LMSYS-Chat-1M (arXiv 2309.11998) lengths; Bailian Trace A gaps"),
    "agentic": SessionShape(
        "coding-agent sessions: a shared 13K-token system prompt and tools, context growing by tool outputs",
        rate=0.5,
        turns=Lengths("lognormal", 2.7726, 1.37, low=1, high=200),  # TraceLab median 16 calls, 41 mean
        first_input=Lengths("lognormal", 8.876, 1.06, low=1, high=60_000),  # Claude Code start: median 20,160
        new_input=Lengths("lognormal", 6.952, 1.48, low=1, high=32_768),  # appended: median 1,045, p90 6,963
        outputs=Lengths("lognormal", 5.517, 0.82, low=1, high=8_192),  # median 249 per call, mean ~349
        think_median_s=2.1, think_sigma=2.49,  # AgentX: inter-request gap median 2.1 s, p90 51 s
        system_tokens=13_000, max_context=131_072,
        source="kv-cache-tester Claude Code traces; TraceLab; AgentX corpus; thoughtworks agentic-coding card"),
}


def resent_tokens(wl: Workload) -> npt.NDArray[np.int64]:
    """Per request, the prompt tokens its session's previous turn already held (that turn's prompt and
    response, which this prompt resends): what a prefix cache can serve at best; 0 outside sessions."""
    out = np.zeros(len(wl), dtype=np.int64)
    sid = wl.session_id
    idx = np.nonzero(sid >= 0)[0]
    if not idx.size:
        return out
    order = idx[np.lexsort((wl.arrival_s[idx], sid[idx]))]  # by session, then arrival
    same = sid[order[1:]] == sid[order[:-1]]
    prev, cur = order[:-1][same], order[1:][same]
    out[cur] = np.minimum(wl.input_tokens[cur], wl.input_tokens[prev] + wl.output_tokens[prev])
    return out
