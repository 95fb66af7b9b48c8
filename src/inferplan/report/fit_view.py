"""A fit as report sections: the memory breakdown as a bar, the verdict, speeds with ranges, every format."""

from __future__ import annotations

import plotly.graph_objects as go

from inferplan.perf.fit import FitResult
from inferplan.report.html import Section, Table, figure_html

GIB = 1024**3


def memory_figure(r: FitResult) -> str:
    """Per device: what the weights, workspace, overhead, reserve and KV cache take of its capacity."""
    n = r.tp * r.pp
    parts = (("weights", r.weights_bytes / n, "#3b6ea5"), ("activation workspace", r.activation_bytes, "#7aa6d6"),
             ("engine overhead", r.overhead_bytes, "#9aa5b1"), ("reserve", r.reserve_bytes, "#d0d5dd"),
             ("KV cache", max(r.kv_budget_bytes, 0.0), "#2e9e5b"))
    fig = go.Figure()
    for name, size, color in parts:
        fig.add_trace(go.Bar(x=[size / GIB], y=["per device"], orientation="h", name=name, marker_color=color,
                             hovertemplate=f"{name}: %{{x:.2f}} GiB<extra></extra>"))
    total = (r.capacity_bytes + r.reserve_bytes) / GIB
    fig.add_vline(x=total, line_dash="dash", line_color="#b42318", annotation_text=f"device memory {total:.1f} GiB")
    fig.update_layout(barmode="stack", title=f"Memory per device ({r.device}, {r.parallelism})", xaxis_title="GiB",
                      legend_orientation="h")
    return figure_html(fig, height=240)


def verdict(r: FitResult) -> str:
    if r.fits_context:
        return (f"fits: the KV cache holds {r.kv_capacity_tokens:,} tokens; max context {r.max_context:,}; "
                f"{r.max_concurrent_sequences:,} concurrent sequences of {r.context:,} tokens")
    why = "weights and workspace exceed memory" if not r.fits else f"one {r.context:,}-token sequence does not fit"
    return f"does not fit: {why}" + (". Try: " + "; ".join(r.suggestions) if r.suggestions else "")


def speed_rows(r: FitResult) -> list[list[str]]:
    """Each speed with its calibrated band and its likely range, where the device kind has them."""
    band = r.speed_range_pct

    def row(name: str, value: float, fmt: str, key: str = "", scale: float = 1.0) -> list[str]:
        cells = [name, fmt.format(value * scale)]
        cells.append("-" if band is None else
                     f"{fmt.format(value / (1 + band / 100) * scale)} - {fmt.format(value * (1 + band / 100) * scale)}")
        span = r.ranges.get(key)
        cells.append(f"{fmt.format(span[0] * scale)} - {fmt.format(span[1] * scale)}" if span else "-")
        return cells

    rows = [row(f"prefill ({r.prompt_tokens:,}-token prompt)", r.prefill_tokens_per_s, "{:,.0f} tok/s"),
            row("TTFT (prompt alone)", r.ttft_s, "{:,.1f} ms", "ttft_s", 1e3),
            row("decode, batch 1", r.decode_tokens_per_s_batch1, "{:,.1f} tok/s", "decode_tokens_per_s_batch1")]
    if r.decode_batch_max > 1:
        rows.append(row(f"decode, batch {r.decode_batch_max:,}", r.decode_tokens_per_s_batch_max, "{:,.0f} tok/s",
                        "decode_tokens_per_s_batch_max"))
    if r.energy_per_token_j > 0:
        rows.append(["energy per token, batch 1", f"{r.energy_per_token_j:,.2f} J", "-", "-"])
    return rows


def formats_table(rows: list[FitResult]) -> Table:
    return Table(["weights", "GiB", "fits", "max ctx", "concurrent", "decode b1 tok/s", "decode max tok/s",
                  "TTFT ms", "quality loss"],
                 [[r.weights_format, f"{r.weights_bytes / GIB:,.1f}", "yes" if r.fits_context else "no",
                   f"{r.max_context:,}", f"{r.max_concurrent_sequences:,}", f"{r.decode_tokens_per_s_batch1:,.1f}",
                   f"{r.decode_tokens_per_s_batch_max:,.0f}", f"{r.ttft_s * 1e3:,.0f}",
                   "unknown" if r.quality_loss_pct is None else f"{r.quality_loss_pct:.2f}%"] for r in rows])


def fit_sections(r: FitResult, formats: list[FitResult]) -> list[Section]:
    quality = ("unknown (no trustworthy measurement in the catalog)" if r.quality_loss_pct is None
               else f"{r.quality_loss_pct:.2f}% worse ({r.quality_source})" if r.quality_loss_pct > 0 else "none")
    return [
        Section("Verdict", note=f"{r.model} ({r.params_total / 1e9:.2f}B params) on {r.tp * r.pp}x {r.device}, "
                f"weights {r.weights_format}, KV {r.kv_format}, context {r.context:,}: {verdict(r)}. "
                f"Quality effect of {r.weights_format}: {quality}.", figures=[memory_figure(r)]),
        Section("Predicted speed", note="Ranges: the calibrated profile's band (1 s.d.) and the 10-90% range of the "
                "device kind's residuals against published measurements.",
                table=Table(["metric", "value", "calibrated band", "likely range"], speed_rows(r))),
        Section("Every weight format", table=formats_table(formats)),
    ]
