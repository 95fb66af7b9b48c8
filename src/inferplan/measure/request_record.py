"""What a benchmark talks to and what it records per request: the endpoint, and one request's timeline."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Api = Literal["completions", "chat"]


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
