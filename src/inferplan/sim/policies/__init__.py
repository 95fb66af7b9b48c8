"""Engine scheduling policies, chosen by name from a plain dict."""

from __future__ import annotations

from collections.abc import Callable

from inferplan.errors import InputError, unknown_name
from inferplan.sim.policies.base import EnginePolicy, StepPlan
from inferplan.sim.policies.paged import PagedScheduler
from inferplan.specs.catalog import get_engine

PolicyOptions = dict[str, int]


def _vllm(opts: PolicyOptions) -> PagedScheduler:
    return PagedScheduler(name="vllm")


def _sglang(opts: PolicyOptions) -> PagedScheduler:
    """SGLang: chunked prefill in steps of their own, before any decode (no mixed chunks by default);
    admission keeps room for the running requests' outputs (the constants are the engine catalog's);
    retraction takes the fewest-generated request."""
    constants = get_engine("sglang").scheduler_options
    return PagedScheduler(name="sglang", new_token_ratio=constants["new_token_ratio"],
                          clip_new_tokens=int(constants["clip_max_new_tokens"]), retract_fewest_outputs=True,
                          prefill_first=bool(constants.get("prefill_first", False)))


def _trtllm(opts: PolicyOptions) -> PagedScheduler:
    """TensorRT-LLM's default GUARANTEED_NO_EVICT capacity policy: a request is admitted only when the
    KV for its prompt and all its outputs is free, so nothing is ever evicted; FCFS, stops at the first misfit."""
    return PagedScheduler(name="trtllm", reserve_full=True)


def _sarathi(opts: PolicyOptions) -> PagedScheduler:
    """Sarathi-Serve: stall-free batching with a fixed chunk (token budget) per step."""
    return PagedScheduler(name="sarathi", token_budget=opts.get("chunk_size", 512), enable_chunked_prefill=True)


def _orca(opts: PolicyOptions) -> PagedScheduler:
    """Orca: iteration-level scheduling, whole prompts, KV reserved for the maximum length."""
    return PagedScheduler(name="orca", reserve_full=True, enable_chunked_prefill=False)


def _static(opts: PolicyOptions) -> PagedScheduler:
    """Static batching: a batch is admitted when the previous one has fully finished."""
    return PagedScheduler(name="static", static_batches=True, reserve_full=True, enable_chunked_prefill=False,
                          token_budget=1 << 40)


def _llamacpp(opts: PolicyOptions) -> PagedScheduler:
    """llama.cpp server: ``-np`` slots, each with ``ctx_size / np`` tokens, prompts in ``n_batch`` chunks.
    Without ``parallel`` the slots are the deployment's max_num_seqs and the KV cache bounds the context
    (the launch files write ``-np max_num_seqs -c max_num_seqs x context``)."""
    if "parallel" not in opts:
        return PagedScheduler(name="llamacpp", reserve_full=True, token_budget=opts.get("n_batch"),
                              enable_chunked_prefill=True)
    parallel = opts["parallel"]
    ctx = opts.get("ctx_size", 4096 * parallel)
    if parallel < 1 or ctx < parallel:
        raise InputError(f"llamacpp needs --parallel >= 1 and --ctx-size >= --parallel (got {parallel}, {ctx})")
    return PagedScheduler(name="llamacpp", reserve_full=True, max_num_seqs=parallel, slot_context=ctx // parallel,
                          token_budget=opts.get("n_batch", 2048), enable_chunked_prefill=True)


POLICIES: dict[str, Callable[[PolicyOptions], PagedScheduler]] = {
    "vllm": _vllm,
    "sglang": _sglang,
    "trtllm": _trtllm,
    "sarathi": _sarathi,
    "orca": _orca,
    "static": _static,
    "llamacpp": _llamacpp,
}


def get_policy(name: str, options: PolicyOptions | None = None) -> PagedScheduler:
    if name not in POLICIES:
        raise unknown_name("policy", name, POLICIES, hint=f"choose one of {', '.join(POLICIES)}")
    return POLICIES[name](options or {})


__all__ = ["POLICIES", "PagedScheduler", "EnginePolicy", "StepPlan", "get_policy"]
