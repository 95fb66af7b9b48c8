"""The Vidur GEMM check: a row's weights counted by hand, priced as a dense step is, and a bad file named."""

from __future__ import annotations

from pathlib import Path

import pytest

from inferplan.errors import InputError
from inferplan.measure.gemm_cases import PROJECTIONS, gemm_cases, read_gemm_points
from inferplan.perf.profile import DeviceProfile
from inferplan.specs.catalog import device_catalog

HEADER = ["n_head", "n_kv_head", "n_embd", "n_expanded_embd", "vocab_size", "use_gated_mlp", "num_tokens",
          "num_tensor_parallel_workers", *(f"time_stats.{p}.median" for p in PROJECTIONS)]


def _write(root: Path, rows: list[list[str]], header: list[str] = HEADER) -> Path:
    folder = root / "h100" / "meta-llama" / "Meta-Llama-3-8B"
    folder.mkdir(parents=True)
    (folder / "mlp.csv").write_text("\n".join(",".join(r) for r in [header, *rows]) + "\n")
    return root


def test_a_layer_is_priced_from_its_weights(tmp_path: Path) -> None:
    # Llama-3-8B's layer at TP 2, one token: each projection took 0.1 ms
    root = _write(tmp_path, [["32", "8", "4096", "14336", "128256", "True", "1", "2", "0.1", "0.1", "0.1", "0.1"]])
    [point] = read_gemm_points(root)
    # QKV 4096 x 6144, output 4096 x 4096, gate and up 2 x 4096 x 14336, down 14336 x 4096; half on each device
    assert point.params == (25_165_824 + 16_777_216 + 117_440_512 + 58_720_256) / 2
    assert point.seconds == pytest.approx(0.4e-3) and point.device == "h100-sxm" and point.tp == 2
    [(device, phase, _, measured, predicted)] = gemm_cases([point])
    h100 = device_catalog()["h100-sxm"]
    # one row streams the weights: 2 bytes each at the shipped profile's share of the datasheet bandwidth
    streaming = 2 * point.params / (h100.memory_bw_bytes_per_s * DeviceProfile.default_for(h100).bandwidth_efficiency)
    assert (device, phase, measured) == ("h100-sxm", "gemm 1-63 rows", 0.4e-3)
    assert predicted == pytest.approx(streaming)


def test_a_file_without_a_timing_column_is_named(tmp_path: Path) -> None:
    root = _write(tmp_path, [["32", "8", "4096", "14336", "128256", "True", "1", "1", "0.1", "0.1", "0.1"]],
                  HEADER[:-1])
    with pytest.raises(InputError, match="mlp.csv: missing column.*mlp_down_proj"):
        read_gemm_points(root)
