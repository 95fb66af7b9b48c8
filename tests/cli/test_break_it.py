"""The break-it list: every bad input is one clear line and exit 2, checked before any work; nothing
recorded wrongly. Each case is a defect a user hit."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.cli.conftest import piped


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("simulate", "--duration", "0"), "--duration must be positive, got 0"),
        (("simulate", "--duration", "-5"), "--duration must be positive, got -5"),
        (("simulate", "--rate", "0"), "--rate must be positive, got 0"),
        (("simulate", "--rate", "-2"), "--rate must be positive"),
        (("simulate", "--rate-scale", "0"), "--rate-scale must be positive"),
        (("simulate", "--num-requests", "0"), "--num-requests must be positive"),
        (("plan", "--rate", "0"), "--rate must be positive"),
        (("plan", "--duration", "0"), "--duration must be positive"),
        (("bench", "http://127.0.0.1:9/v1", "--rate", "0"), "--rate must be positive"),
        (("bench", "http://127.0.0.1:9/v1", "--timeout", "0"), "--timeout must be positive"),
        (("simulate", "--replicas", "0"), "--replicas must be at least 1"),
        (("simulate", "--gpu-memory-utilization", "0"), "gpu_memory_utilization must be in (0, 1]"),
        (("simulate", "--spec", "eagle3", "--spec-acceptance", "1.5"), "acceptance rate in [0, 1] (got 1.5)"),
        (("simulate", "--spec", "eagle3", "--spec-acceptance", "-0.1"), "acceptance rate in [0, 1] (got -0.1)"),
        (("simulate", "--spec", "draft", "--spec-draft", "llama-3.1-70b"), "is not smaller than the target"),
        (("simulate", "--spec", "eagle3", "--spec-tokens", "0"), "between 1 and 16 proposed tokens"),
        (("simulate", "--spec", "mtp"), "has no multi-token-prediction layers"),
        (("plan", "--spec", "medusa"), "--spec must be one of off, auto, eagle3"),
        (("fit", "--spec", "eagle3", "--spec-acceptance", "2"), "acceptance rate in [0, 1] (got 2)"),
        (("simulate", "--power-cap", "50"), "--power-cap 50 W is at or below h100-sxm's idle power (70 W)"),
        (("simulate", "--wired-limit", "40"), "--wired-limit is macOS's GPU memory limit (iogpu.wired_limit_mb)"),
        (("fit", "llama-3.1-8b", "m1-8gb", "--wired-limit", "9"), "at most m1-8gb's 8 GiB of memory"),
        (("plan", "--power-budget", "-5"), "--power-budget must be a positive number of watts, got -5"),
        (("plan", "--objective", "joules"), "--objective must be one of cost, energy, cost+energy, got 'joules'"),
    ],
)
def test_zero_and_negative_values_are_refused_not_replaced(tmp_path: Path, args: tuple[str, ...], needle: str) -> None:
    r = piped(tmp_path, *args)
    assert r.returncode == 2, r.stdout + r.stderr
    assert needle in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_a_folder_or_a_binary_file_as_workload(tmp_path: Path) -> None:
    folder = tmp_path / "traces"
    folder.mkdir()
    binary = tmp_path / "model.bin"
    binary.write_bytes(bytes(range(256)) * 64)
    for workload, needle in ((folder, "is a folder; --workload takes a trace file"), (binary, "not a text file")):
        r = piped(tmp_path, "simulate", "--workload", str(workload))
        assert r.returncode == 2 and needle in r.stderr and str(workload) in r.stderr, r.stderr
        assert "Traceback" not in r.stderr


def test_an_unwritable_out_fails_before_the_work(tmp_path: Path) -> None:
    """`--out` under a file cannot be created (even by root): refused at once, not after minutes of planning."""
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    for verb in ("plan", "simulate"):
        start = time.monotonic()
        r = piped(tmp_path, verb, "--out", str(blocker / "runs"))
        assert r.returncode == 2 and f"--out {blocker / 'runs'}: cannot write there" in r.stderr, r.stderr
        assert time.monotonic() - start < 10  # the planner never started
    r = piped(tmp_path, "simulate", "--out", str(blocker))
    assert r.returncode == 2 and "is a file, not a folder" in r.stderr


def test_an_unopenable_registry_fails_before_the_work(tmp_path: Path) -> None:
    r = piped(tmp_path, "simulate", "--registry", str(tmp_path))
    assert r.returncode == 2 and "cannot open the run registry" in r.stderr and "Traceback" not in r.stderr


def _config(tmp: Path, name: str, **changes: object) -> Path:
    catalog = Path(__file__).parents[2] / "src/inferplan/specs/catalog/models/llama-3.1-8b.json"
    cfg = json.loads(catalog.read_text())["config"]
    for key, value in changes.items():
        if value is None:
            cfg.pop(key, None)
        else:
            cfg[key] = value
    path = tmp / f"{name}.json"
    path.write_text(json.dumps(cfg))
    return path


def test_config_without_kv_heads_is_read_as_transformers_reads_it(tmp_path: Path) -> None:
    """Llama without num_key_value_heads is multi-head (LlamaConfig's default), Mistral has 8 KV heads
    (MistralConfig's default): never silently one or the other, and the fit says which."""
    llama = json.loads(piped(tmp_path, "fit", str(_config(tmp_path, "llama", num_key_value_heads=None)), "h100-sxm",
                             "--json").stdout)
    assert llama["kv_bytes_per_token"] == 2 * 32 * 32 * 128 * 2  # K and V, 32 layers, 32 heads of 128, bf16
    assert "read as 32 (multi-head attention)" in llama["model_note"]
    mistral = json.loads(piped(tmp_path, "fit", str(_config(tmp_path, "mistral", num_key_value_heads=None,
                                                            model_type="mistral")), "h100-sxm", "--json").stdout)
    assert mistral["kv_bytes_per_token"] == 2 * 32 * 8 * 128 * 2 and "read as 8" in mistral["model_note"]


@pytest.mark.parametrize(
    ("quant", "weights"),
    [
        ({"quant_method": "fp8", "activation_scheme": "dynamic"}, "fp8"),
        ({"quant_method": "awq", "bits": 4, "group_size": 128}, "int4-awq"),
        ({"quant_method": "gptq", "bits": 4, "group_size": 128}, "int4-gptq"),
        ({"quant_method": "compressed-tensors",
          "config_groups": {"group_0": {"weights": {"num_bits": 8, "type": "int"}}}}, "int8"),
    ],
)
def test_a_quantized_config_is_read_as_its_format(tmp_path: Path, quant: dict[str, object], weights: str) -> None:
    path = _config(tmp_path, "q", quantization_config=quant)
    fit = json.loads(piped(tmp_path, "fit", str(path), "h100-sxm", "--json").stdout)
    assert fit["weights_format"] == weights
    wrong = piped(tmp_path, "fit", str(path), "h100-sxm", "--weights", "bf16")
    assert wrong.returncode == 2 and f"declares a {weights} checkpoint" in wrong.stderr


def test_an_unknown_quantization_method_is_an_error_naming_the_field(tmp_path: Path) -> None:
    r = piped(tmp_path, "fit", str(_config(tmp_path, "hqq", quantization_config={"quant_method": "hqq"})), "l4")
    assert r.returncode == 2 and "quantization_config.quant_method 'hqq'" in r.stderr


def test_runs_show_and_compare_work_from_another_folder(tmp_path: Path) -> None:
    """Absolute output paths in the registry: `compare` reads requests.csv wherever the user stands."""
    first = json.loads(piped(tmp_path, "simulate", "--duration", "30", "--json", "--no-report").stdout)
    assert Path(first["out_dir"]).is_absolute()
    second = json.loads(piped(tmp_path, "simulate", "--duration", "30", "--rate", "3", "--json",
                              "--no-report").stdout)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    import subprocess
    import sys

    from tests.cli.conftest import environment

    r = subprocess.run([sys.executable, "-m", "inferplan.cli", "compare", first["run_id"], second["run_id"],
                        "--out", "reports"], capture_output=True, text=True, cwd=elsewhere,
                       env=environment(tmp_path), timeout=120)
    assert r.returncode == 0, r.stderr
    assert list((elsewhere / "reports").glob("compare-*.html"))


def test_calibrate_from_a_standard_two_row_llama_bench_file(tmp_path: Path) -> None:
    """pp512 and tg128 determine compute and bandwidth; overhead is kept, and the output says so."""
    bench = tmp_path / "results.json"
    bench.write_text(json.dumps([{"n_prompt": 512, "n_gen": 0, "n_depth": 0, "avg_ts": 9500.0},
                                 {"n_prompt": 0, "n_gen": 128, "n_depth": 0, "avg_ts": 150.0}]))
    r = piped(tmp_path, "calibrate", "--llama-bench", str(bench), "--model", "llama-3.1-8b", "--weights",
              "gguf-q4_k_m", "--device", "rtx-4090", "--out", str(tmp_path / "p.yaml"), "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["fitted"] == ["compute", "bandwidth"] and "overhead kept" in doc["note"]
    assert all(v is None or v == v for v in doc["std_errors"].values())  # JSON null, never Infinity
    assert "inf" not in piped(tmp_path, "calibrate", "--llama-bench", str(bench), "--model", "llama-3.1-8b",
                              "--weights", "gguf-q4_k_m", "--device", "rtx-4090", "--out",
                              str(tmp_path / "p.yaml")).stdout
    asked = piped(tmp_path, "calibrate", "--llama-bench", str(bench), "--model", "llama-3.1-8b", "--weights",
                  "gguf-q4_k_m", "--device", "rtx-4090", "--fit", "compute,bandwidth,overhead",
                  "--out", str(tmp_path / "p.yaml"))
    assert asked.returncode == 2 and "llama-bench -p 64,512 -n 16,128" in asked.stderr


def test_an_overloaded_simulation_is_flagged(tmp_path: Path) -> None:
    s = json.loads(piped(tmp_path, "simulate", "llama-3.1-8b", "--device", "l4", "--rate", "20", "--duration", "60",
                         "--json", "--no-report").stdout)
    assert s["overload"] and s["overload"].startswith("overloaded: the median queueing delay grows")
    calm = json.loads(piped(tmp_path, "simulate", "--duration", "60", "--json", "--no-report").stdout)
    assert calm["overload"] is None
    text = piped(tmp_path, "simulate", "llama-3.1-8b", "--device", "l4", "--rate", "20", "--duration", "60",
                 "--no-report").stdout
    assert "warning: overloaded" in text
