"""Shared fixtures: small workloads and replicas whose KV size the test chooses."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from inferplan.api import EngineLimits, build_deployment
from inferplan.sim.metrics import LogHistogram
from inferplan.sim.policies import get_policy
from inferplan.sim.replica import Replica
from inferplan.sim.state import RequestTable
from inferplan.workload.request import Workload

TRACES = Path(__file__).resolve().parents[2] / "shared" / "data" / "traces"
# the README's trace examples read the shared Azure traces beside the checkout (CI has them there)
needs_azure_trace = pytest.mark.skipif(not (TRACES / "azure_llm_2023_conv.csv").exists(),
                                       reason="shared Azure traces not present (../shared/data/traces)")


def make_requests(n: int, prompt: int | list[int], out: int | list[int], *, gap_s: float = 0.0,
                  prefix_group: list[int] | None = None, prefix_tokens: list[int] | None = None) -> Workload:
    """n requests arriving ``gap_s`` apart with the given prompt and output lengths."""
    prompts = prompt if isinstance(prompt, list) else [prompt] * n
    outs = out if isinstance(out, list) else [out] * n
    return Workload.build(np.arange(n) * gap_s, prompts, outs, prefix_group=prefix_group, prefix_tokens=prefix_tokens,
                          name="test")


def make_replica(wl: Workload, *, num_blocks: int, policy: str = "vllm", block_size: int = 16,
                 max_num_seqs: int = 256, max_num_batched_tokens: int = 8192, chunked: bool = True,
                 prefix_caching: bool = False, options: dict[str, int] | None = None) -> Replica:
    """A replica of a real deployment, with its KV cache resized to ``num_blocks`` for the test."""
    limits = EngineLimits(max_num_seqs=max_num_seqs, max_num_batched_tokens=max_num_batched_tokens,
                          block_size=block_size, enable_chunked_prefill=chunked, enable_prefix_caching=prefix_caching)
    dep = build_deployment("llama-3.2-1b", "h100-sxm", limits=limits)
    pol = get_policy(policy, options)
    table = RequestTable(wl)
    rep = Replica(0, dep, pol, table, itl=LogHistogram(), bucket_s=1.0, leap=False)
    rep.state = pol.state_for(table, limits, num_blocks)
    return rep


@pytest.fixture
def requests() -> Callable[..., Workload]:
    return make_requests


@pytest.fixture
def replica() -> Callable[..., Replica]:
    return make_replica
