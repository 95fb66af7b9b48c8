"""CLI verb `profile`: microbenchmark this machine's CPU, or its CUDA GPU, into a device profile."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from inferplan.api import InputError
from inferplan.cli import options
from inferplan.cli.app import app
from inferplan.cli.output import ProgressReport, emit_json, interrupted, out, print_table

if TYPE_CHECKING:
    from inferplan.api import DeviceProfile

PROFILE_EPILOG = (
    "Examples:\n\n  inferplan profile\n\n  inferplan profile --out my-laptop.yaml\n\n"
    "  inferplan profile --cuda                 # the GPU: GEMMs by shape (bf16, fp8), bandwidth, attention\n\n"
    "  inferplan profile --cuda --as h100-sxm --out h100.yaml\n\n"
    "  inferplan fit llama-3.2-1b local --weights fp32\n\n"
    "  inferplan simulate llama-3.1-8b --device h100-sxm --profile h100.yaml --workload chat --rate 4\n\n"
    "  inferplan simulate llama-3.2-1b --device local --weights fp32 "
    "--kv fp32 --workload chat --rate 0.2 --duration 60"
)


@app.command("profile", epilog=PROFILE_EPILOG)
def profile_cmd(
    out_file: Annotated[Path | None, typer.Option("--out", help="profile file to write (default: this user's "
                                                  "data folder, where `--device local` finds it)")] = None,
    quick: Annotated[bool, typer.Option("--quick", help="a smaller sweep (~15 s), for a first look")] = False,
    cuda: Annotated[bool, typer.Option("--cuda", help="profile the CUDA GPU torch sees (device 0) instead of "
                                                      "the CPU")] = False,
    as_device: Annotated[str | None, typer.Option(
        "--as", help="with --cuda: the catalog device this GPU is (default: matched by its CUDA name and memory)",
    )] = None,
    as_json: options.Json = False,
) -> None:
    """Microbenchmark this machine (matmul, memory bandwidth, attention, framework overhead) into a device profile."""
    from inferplan.api import local_profile_path

    if as_device and not cuda:
        raise InputError("--as names the catalog device a CUDA GPU is; use it with --cuda")
    path = out_file or local_profile_path()
    with interrupted(lambda: "profiling stopped before it finished; no profile was written"), \
            ProgressReport("profiling", quiet=as_json, counted=False) as bar:
        prof = _gpu(bar, quick, as_device) if cuda else _cpu(bar, quick)
    from inferplan.api import implausible

    warnings = [] if cuda else implausible(prof)
    warnings += [str(n) for n in prof.measurements.get("notes", [])]
    prof.dump(path)
    if as_json:
        emit_json(prof.model_dump(mode="json", exclude={"measurements"}) | {"path": str(path), "warnings": warnings})
        return
    _print_profile(prof, cuda)
    for warning in warnings:
        out.print(f"[yellow]warning[/]: {warning}", soft_wrap=True)
    out.print(f"profile: {path}")
    out.print("use it with `--device local` (fit, simulate, plan, validate), or `--profile FILE`")


def _cpu(bar: ProgressReport, quick: bool) -> DeviceProfile:
    from inferplan.api import fit_profile, measure

    return fit_profile(measure(lambda what, frac: bar.say(f"{what} ({frac:.0%})"), quick=quick))


def _gpu(bar: ProgressReport, quick: bool, as_device: str | None) -> DeviceProfile:
    from inferplan.api import catalog_match, device_catalog, fit_gpu_profile, measure_gpu

    devices = dict(device_catalog())
    if as_device is not None and as_device not in devices:
        raise InputError(f"--as: unknown device {as_device!r}; `inferplan catalog devices` lists them")
    res = measure_gpu(lambda what, frac: bar.say(f"{what} ({frac:.0%})"), quick=quick)
    known = devices[as_device] if as_device else catalog_match(res.name, res.memory_gib, devices)
    if known is None:
        res.notes.append(f"{res.name} matched no catalog device: its measured peaks are its datasheet "
                         "(name it with --as to price a catalog device)")
    return fit_gpu_profile(res, known)


def _print_profile(prof: DeviceProfile, cuda: bool) -> None:
    from rich.table import Table

    spec = prof.device_spec
    assert spec is not None
    t = Table(title=f"{spec.display_name}: measured")
    t.add_column("quantity")
    t.add_column("value", justify="right")
    rows = [(r, e) for r, e in prof.matmul_curve]
    picks = [(r, e) for r, e in rows if r in (1, 16, 256, 4096)] or rows[:: max(1, len(rows) // 3)]
    curve = " / ".join(f"{e:.0%} at {r:g}" for r, e in picks)
    ours = [("matmul efficiency by rows", curve),
            ("streaming read" if not cuda else "memory bandwidth (datasheet)", f"{spec.memory_bw_gb_s:,.1f} GB/s"),
            ("matrix-vector share of it", f"{prof.bandwidth_efficiency:.0%}"),
            ("attention (share of 16-bit peak)" if cuda else "attention (share of fp32 peak)",
             f"{prof.attention_efficiency:.0%}"),
            ("eager PyTorch: per step / per layer / per sequence",
             f"{prof.step_overhead_s * 1e3:.2f} / {prof.per_layer_overhead_s * 1e3:.2f} / "
             f"{prof.per_sequence_overhead_s * 1e3:.3f} ms"),
            ("memory", f"{spec.memory_gib:,.1f} GiB")]
    peaks = [(f"{d} matmul peak{' (datasheet)' if cuda else ''}", f"{spec.peak_tflops[d]:,.3g} TFLOP/s")
             for d in ("fp32", "bf16", "fp8") if d in spec.peak_tflops and (d != "fp32" or not cuda)]
    extra = []
    if cuda:
        extra = [("large bf16 GEMMs reach", f"{prof.matmul_efficiency:.0%} of peak")]
        if "fp8" in prof.matmul_efficiency_by_dtype:
            extra.append(("large fp8 GEMMs reach", f"{prof.matmul_efficiency_by_dtype['fp8']:.0%} of peak"))
        extra.append(("one kernel launch", f"{float(prof.measurements.get('launch_s', 0.0)) * 1e6:.1f} us"))
    for name, value in peaks + extra + ours:
        t.add_row(name, value)
    print_table(t)
