"""CLI verbs about one replica and the catalogs: `fit`, `models`, `devices`, `formats`, `version`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from inferplan.api import InputError
from inferplan.cli import options
from inferplan.cli.app import app
from inferplan.cli.output import emit_json, out, print_table

if TYPE_CHECKING:
    from inferplan.api import FitResult

GIB = 1024**3


def _gib(x: float) -> str:
    return f"{x / GIB:,.1f} GiB"


@app.command(
    "fit",
    epilog="Examples:\n\n  inferplan fit\n\n"
    "  inferplan fit llama-3.1-70b h100-sxm --weights int4-awq --context 32768\n\n"
    "  inferplan fit ./my-model/config.json rtx-4090 --all-formats\n\n"
    "  inferplan fit qwen3-30b-a3b m3-max-128gb --json\n\n"
    "  inferplan fit llama-3.1-70b m2-ultra-192gb --weights fp16 --wired-limit 176",
)
def fit_cmd(
    model: options.Model = "llama-3.1-8b",
    device: Annotated[str, typer.Argument(help="catalog name or a device .yaml file")] = "l4",
    weights: options.Weights = None,
    kv: options.KvFormat = "bf16",
    context: Annotated[int, typer.Option(help="context length per sequence (prompt + output)")] = 8192,
    prompt: Annotated[int | None, typer.Option(help="prompt length for TTFT (default min(context, 1024))")] = None,
    batch: Annotated[int | None,
                     typer.Option(help="decode batch for the throughput figure (default: largest that fits)")] = None,
    tp: options.Tp = 1,
    pp: options.Pp = 1,
    ep: options.Ep = False,
    dp_attention: options.DpAttention = False,
    engine: options.Engine = None,
    gpu_memory_utilization: options.GpuMemoryUtilization = None,
    max_num_seqs: options.MaxNumSeqs = None,
    max_num_batched_tokens: options.MaxBatchedTokens = None,
    profile: options.ProfileFile = None,
    all_formats: Annotated[bool, typer.Option("--all-formats", help="compare every weight format")] = False,
    spec: options.Spec = None,
    spec_tokens: options.SpecTokens = None,
    spec_acceptance: options.SpecAcceptance = None,
    spec_draft: options.SpecDraft = None,
    kv_budget: options.KvBudget = None,
    wired_limit: options.WiredLimit = None,
    record: Annotated[bool, typer.Option("--record", help="keep this fit as a run in the registry")] = False,
    registry: options.RegistryPath = None,
    as_json: options.Json = False,
) -> None:
    """Will MODEL run on DEVICE, with which formats, and how fast?"""
    from inferplan.api import build_deployment, fit, fit_all_formats, resolve_speculation

    limits = {"max_num_seqs": max_num_seqs, "max_num_batched_tokens": max_num_batched_tokens,
              "gpu_memory_utilization": gpu_memory_utilization}
    dep = build_deployment(model, device, weights=weights, kv=kv, tp=tp, pp=pp, ep=ep, dp_attention=dp_attention,
                           limits=limits, profile=profile, engine=engine, kv_budget=kv_budget,
                           wired_limit_gib=wired_limit,
                           speculation=resolve_speculation(spec, k=spec_tokens, acceptance=spec_acceptance,
                                                           draft=spec_draft))
    if all_formats and record:
        raise InputError("--record keeps one fit as a run; leave out --all-formats (or --record)")
    if all_formats:
        rows = fit_all_formats(dep, context=context, prompt_tokens=prompt)
        if as_json:
            emit_json([r.to_dict() for r in rows])
        else:
            _print_formats_table(rows, dep.describe())
        return
    result = fit(dep, context=context, prompt_tokens=prompt, batch=batch)
    run_id = None
    if record:
        from inferplan.api import Registry, record_fit  # only here: recording loads the run layer

        reg = Registry(registry)
        run_id = record_fit(result, {"model": model, "device": device, "weights": weights, "kv": kv, "tp": tp,
                                     "pp": pp, "engine": engine, "context": context,
                                     "wired_limit_gib": wired_limit}, reg)
    if as_json:
        emit_json(result.to_dict() | {"model_note": dep.model.note or None, "run_id": run_id})
    else:
        _print_fit(result, dep.model.describe())
        if dep.model.note:
            out.print(f"note: {dep.model.note}", soft_wrap=True, markup=False)
        if run_id:
            out.print(f"run {run_id} recorded in {reg.path}")


def _print_fit(r: FitResult, arch: str) -> None:
    from rich.table import Table

    out.print(f"[bold]{r.model}[/] ({r.params_total / 1e9:.2f}B params, {r.params_active / 1e9:.2f}B active; {arch})")
    out.print(f"on {r.tp * r.pp}x [bold]{r.device}[/] ({r.parallelism}) - weights {r.weights_format}, "
              f"KV {r.kv_format}, context {r.context:,}")
    mem = Table(title="Memory per device", show_header=True)
    mem.add_column("part")
    mem.add_column("size", justify="right")
    n = r.tp * r.pp
    mem.add_row("weights", _gib(r.weights_bytes / n))
    mem.add_row("activation workspace", _gib(r.activation_bytes))
    mem.add_row("engine overhead", _gib(r.overhead_bytes))
    mem.add_row("reserve (1 - gpu_memory_utilization)", _gib(r.reserve_bytes))
    mem.add_row("KV cache", _gib(r.kv_budget_bytes))
    mem.add_row("[bold]usable capacity[/]", _gib(r.capacity_bytes))
    print_table(mem)
    if r.wired_limit_gib is not None:
        out.print(f"usable capacity is macOS's GPU wired-memory limit, {r.wired_limit_gib:.1f} GiB: sudo sysctl "
                  "iogpu.wired_limit_mb=N raises it until reboot (then pass --wired-limit N/1024)")
    if r.fits_context:
        out.print(
            f"[green]fits[/]: KV cache holds {r.kv_capacity_tokens:,} tokens "
            f"({r.kv_bytes_per_token / 1024:,.0f} KiB per token); max context {r.max_context:,}; "
            f"{r.max_concurrent_sequences:,} concurrent sequences of {r.context:,} tokens"
        )
        if r.unified_memory:
            tight = " [yellow](tight: close other apps)[/]" if r.headroom_bytes < 2 * GIB else ""
            out.print(f"leaves {_gib(r.headroom_bytes)} of memory for the OS and other apps while serving one "
                      f"{r.context:,}-token conversation{tight}")
    else:
        why = "weights and workspace exceed memory" if not r.fits else f"one {r.context:,}-token sequence does not fit"
        out.print(f"[red]does not fit[/]: {why}")
        for tip in r.suggestions:
            out.print(f"  - {tip}")
    speed = Table(title="Predicted speed", show_header=True)
    speed.add_column("metric")
    speed.add_column("value", justify="right")
    band = r.speed_range_pct
    if band is not None:
        speed.add_column("range (calibrated, 1 s.d.)", justify="right")
    if r.ranges:
        speed.add_column("likely range (residuals, 10-90%)", justify="right")

    def row(name: str, value: float, fmt: str, key: str = "", scale: float = 1.0) -> None:
        cells = [name, fmt.format(value * scale)]
        if band is not None:
            lo, hi = value / (1 + band / 100), value * (1 + band / 100)
            cells.append(f"{fmt.format(lo * scale)} - {fmt.format(hi * scale)}")
        if r.ranges:
            span = r.ranges.get(key)
            cells.append(f"{fmt.format(span[0] * scale)} - {fmt.format(span[1] * scale)}" if span else "-")
        speed.add_row(*cells)

    row(f"prefill throughput ({r.prompt_tokens:,}-token prompt)", r.prefill_tokens_per_s, "{:,.0f} tok/s")
    row("TTFT (prompt alone)", r.ttft_s, "{:,.1f} ms", "ttft_s", 1e3)
    row("decode, batch 1", r.decode_tokens_per_s_batch1, "{:,.1f} tok/s", "decode_tokens_per_s_batch1")
    if r.decode_batch_max > 1:
        row(f"decode, batch {r.decode_batch_max:,}", r.decode_tokens_per_s_batch_max, "{:,.0f} tok/s",
            "decode_tokens_per_s_batch_max")
    print_table(speed)
    if r.energy_per_token_j > 0:
        out.print(f"energy: {r.energy_per_token_j:,.2f} J per generated token at batch 1 "
                  f"({3600 / r.energy_per_token_j:,.0f} tokens per Wh of battery)")
    if r.kv_budget:
        out.print(f"KV budget {r.kv_budget}: quality effect "
                  + (r.kv_budget_quality or "unknown (no published figure for this model and budget)"))
    if r.quality_loss_pct is None:
        out.print(f"quality effect of {r.weights_format}: unknown (no trustworthy measurement in the catalog)")
    elif r.quality_loss_pct > 0:
        out.print(f"quality effect of {r.weights_format}: {r.quality_loss_pct:.2f}% worse - {r.quality_source}")


def _print_formats_table(rows: list[FitResult], title: str) -> None:
    from rich.table import Table

    t = Table(title=title)
    for col in ("weights", "GiB", "fits", "max ctx", "conc.", "dec b1 tok/s", "dec max tok/s", "TTFT ms",
                "quality loss"):
        t.add_column(col, justify="left" if col == "weights" else "right")
    for r in rows:
        q = "unknown" if r.quality_loss_pct is None else f"{r.quality_loss_pct:.2f}%"
        t.add_row(
            r.weights_format,
            f"{r.weights_bytes / GIB:,.1f}",
            "[green]yes[/]" if r.fits_context else "[red]no[/]",
            f"{r.max_context:,}",
            f"{r.max_concurrent_sequences:,}",
            f"{r.decode_tokens_per_s_batch1:,.1f}",
            f"{r.decode_tokens_per_s_batch_max:,.0f}",
            f"{r.ttft_s * 1e3:,.0f}",
            q,
        )
    print_table(t)


@app.command("models")
def models_cmd(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List the bundled model catalog."""
    from rich.table import Table

    from inferplan.api import model_catalog

    cat = model_catalog()
    if as_json:
        emit_json(
            [
                {"name": m.name, "params_total": m.params_total, "params_active": m.params_active,
                 "kv_bytes_per_token_bf16": m.kv_bytes_per_token(), "max_context": m.max_position_embeddings,
                 "architecture": m.describe(), "source": m.source}
                for m in cat.values()
            ]
        )
        return
    t = Table(title=f"{len(cat)} models (config.json facts; source in --json)")
    for col in ("name", "params", "active", "KV KiB/token (bf16)", "max ctx", "architecture"):
        t.add_column(col)
    for m in cat.values():
        t.add_row(m.name, f"{m.params_total / 1e9:.2f}B", f"{m.params_active / 1e9:.2f}B",
                  f"{m.kv_bytes_per_token() / 1024:.0f}", f"{m.max_position_embeddings:,}", m.describe())
    print_table(t)


@app.command("devices")
def devices_cmd(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List the bundled device catalog (datasheet facts with sources)."""
    from rich.table import Table

    from inferplan.api import device_catalog

    cat = device_catalog()
    if as_json:
        emit_json([d.model_dump() for d in cat.values()])
        return
    t = Table(title=f"{len(cat)} devices (dense peak; sources in --json)")
    for col in ("name", "kind", "memory", "bandwidth", "bf16/fp16 TFLOPS", "power W", "$/hour (date)"):
        t.add_column(col)
    for d in cat.values():
        price = f"{d.price_per_hour_usd:.3f} ({d.price_date})" if d.price_per_hour_usd is not None else "-"
        t.add_row(d.name, d.kind, f"{d.memory_gib:g} GiB", f"{d.memory_bw_gb_s:g} GB/s",
                  f"{d.peak_flops('bf16') / 1e12:g}", f"{d.peak_power_w:g}", price)
    print_table(t)


@app.command("formats")
def formats_cmd(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List weight and KV-cache formats with bits, kernels and quality effects (with sources)."""
    from rich.table import Table

    from inferplan.api import kv_format_catalog, weight_format_catalog

    wcat, kcat = weight_format_catalog(), kv_format_catalog()
    if as_json:
        emit_json({"weights": [f.model_dump() for f in wcat.values()],
                   "kv_cache": [f.model_dump() for f in kcat.values()]})
        return
    t = Table(title="weight formats")
    for col in ("name", "bits/weight", "compute", "fast on", "quality loss", "measured on"):
        t.add_column(col)
    for f in wcat.values():
        loss = f.quality_loss_pct()
        t.add_row(f.name, f"{f.bits_per_weight:g}", f.compute_dtype, ", ".join(f.fast_on) or "(no fast kernel)",
                  "unknown" if loss is None else f"{loss:.2f}%",
                  f"{f.quality.model} ({f.quality.metric})" if f.quality else "-")
    print_table(t)
    k = Table(title="KV-cache formats")
    for col in ("name", "bits/value", "quality loss", "notes"):
        k.add_column(col)
    for kf in kcat.values():
        loss = kf.quality_loss_pct()
        k.add_row(kf.name, f"{kf.bits_per_value:g}", "unknown" if loss is None else f"{loss:.2f}%", kf.notes)
    print_table(k)


@app.command("engines")
def engines_cmd(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List the serving engines: the scheduler each runs, how it sizes KV, its host overhead and defaults."""
    from rich.table import Table

    from inferplan.api import engine_catalog

    cat = engine_catalog()
    if as_json:
        emit_json([e.model_dump() for e in cat.values()])
        return
    t = Table(title=f"{len(cat)} serving engines (sources in --json)")
    for col in ("name", "scheduler", "KV memory", "host overhead, GPU (by kind: --json)", "max seqs / tokens / block",
                "serves on"):
        t.add_column(col)
    for e in cat.values():
        o, d = e.overhead_on(e.runs_on[0]), e.defaults
        t.add_row(e.name, e.scheduler, f"{e.memory_rule} {d.memory_fraction:g}",
                  f"{o.step_s * 1e3:g} ms + {o.per_sequence_s * 1e6:g} us/seq",
                  f"{d.max_num_seqs} / {d.max_num_batched_tokens} / {d.block_size}", ", ".join(e.runs_on))
    print_table(t)


@app.command("version")
def version_cmd() -> None:
    """Print the version."""
    from inferplan import __version__

    out.print(__version__)
