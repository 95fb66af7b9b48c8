"""Fleet specs (`plan --fleet fleet.yaml`): read and checked whole before any work, each model planned, and the
fleet's cost shared among tenants."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from inferplan.errors import InputError
from inferplan.plan.fleet_spec import fleet_budget_split, read_fleet_spec, tenant_costs
from tests.cli.conftest import in_terminal, piped
from tests.cli.test_terminal import assert_ok
from tests.sim.summaries import sample_summary

SPEC = """devices: [h100-sxm]
models:
  - model: llama-3.1-8b
    workload: ["chat:name=support,rate=3,duration=120", "batch:name=evals,count=200,deadline=10m"]
    slo: ttft_p90=1s,tpot_p90=50ms
  - model: llama-3.2-1b
    workload: code:name=ide,rate=2,duration=120
"""


def _spec(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "fleet.yaml"
    path.write_text(text)
    return path


def test_a_spec_reads_into_one_entry_per_model(tmp_path: Path) -> None:
    spec = read_fleet_spec(_spec(tmp_path, SPEC))
    assert spec.devices == ("h100-sxm",) and [e.model for e in spec.entries] == ["llama-3.1-8b", "llama-3.2-1b"]
    assert spec.entries[0].workload == "chat:name=support,rate=3,duration=120 + batch:name=evals,count=200,deadline=10m"
    assert spec.entries[1].slo is None


@pytest.mark.parametrize(("text", "names"), [
    ("models: []\n", "expected 'models:'"),
    ("models:\n  - {model: llama-9b, workload: chat}\n", r"models\[0\]\.model: .*llama-9b"),
    ("models:\n  - {model: llama-3.1-8b, workload: 'chat:rat=3'}\n", r"models\[0\]\.workload: .*unknown option 'rat'"),
    ("models:\n  - {model: llama-3.1-8b, workload: chat, slo: fast}\n", r"models\[0\]\.slo: cannot read SLO 'fast'"),
    ("models:\n  - {model: llama-3.1-8b, workload: chat, tenants: 3}\n", r"models\[0\]: unknown field 'tenants'"),
    ("devices: [h900]\nmodels:\n  - {model: llama-3.1-8b, workload: chat}\n", "devices: .*h900"),
    ("budget: 3\nmodels:\n  - {model: llama-3.1-8b, workload: chat}\n", "unknown field 'budget'"),
    ("share_devices: maybe\nmodels:\n  - {model: llama-3.1-8b, workload: chat}\n", "share_devices: expected true or"),
    ("models: [\n", "not valid YAML"),
])
def test_a_bad_spec_names_the_entry_and_field(tmp_path: Path, text: str, names: str) -> None:
    with pytest.raises(InputError, match=names):
        read_fleet_spec(_spec(tmp_path, text))


def test_a_models_cost_is_shared_by_the_output_tokens_its_tenants_were_served() -> None:
    s = sample_summary()
    assert [(t.tenant, t.cost_per_hour) for t in tenant_costs("m", s, 3.0)] == [("m", 3.0)]


def test_plan_a_fleet_in_a_terminal_and_as_json(tmp_path: Path) -> None:
    path = _spec(tmp_path, SPEC)
    s = in_terminal(tmp_path, "plan", "--fleet", str(path), "--out", "plans", columns=120, timeout=600)
    text = " ".join(assert_ok(s.text, s.exit_code).split())
    assert "model 1 of 2: llama-3.1-8b" in text and "model 2 of 2: llama-3.2-1b" in text
    assert "Each model planned alone" in text and "by tenant" in text and "support" in text and "evals" in text
    # each alone takes an H100; together one H100 serves both, each model within its SLOs and deadline
    assert ("shared: llama-3.1-8b + llama-3.2-1b on 1 x h100-sxm" in text and "$2.99/hour against $5.98/hour apart"
            in text and "llama-3.1-8b/evals done within 10m" in text and "fleet: $2.99/hour (apart $5.98/hour)" in text)
    doc = json.loads(next((tmp_path / "plans").glob("fleet-*.json")).read_text())
    assert doc["cost_per_hour_apart"] == pytest.approx(sum(m["cost_per_hour"] for m in doc["models"]))
    [shared] = doc["shared"]
    assert shared["verified"] and doc["cost_per_hour"] == pytest.approx(shared["cost_per_hour"]) == 2.99
    assert sum(shared["memory_shares"].values()) <= 0.9 + 1e-9 and doc["power_w"] == 700
    assert all(v["met"] for v in shared["by_model"]) and (Path(shared["deploy"]) / "launch.sh").is_file()
    by_model: dict[str, float] = {}
    for t in doc["tenants"]:
        by_model[t["model"]] = by_model.get(t["model"], 0.0) + t["cost_per_hour"]
    assert sum(by_model.values()) == pytest.approx(doc["cost_per_hour"])  # the shared device's cost, split
    assert doc["models"][0]["fairness_jain"] is not None and all(Path(m["plan"]).is_file() for m in doc["models"])


@pytest.mark.parametrize(("text", "needle"), [
    ("models:\n  - {model: llama-9b, workload: chat}\n", "models[0].model"),
    ("models:\n  - {model: llama-3.1-8b, workload: 'batch:count=50,deadline=-2h'}\n", "deadline must be positive"),
    ("models:\n  - {model: llama-3.1-8b, workload: nosuchpreset}\n", "models[0].workload"),
])
def test_a_bad_fleet_is_one_clear_line_before_any_work(tmp_path: Path, text: str, needle: str) -> None:
    r = piped(tmp_path, "plan", "--fleet", str(_spec(tmp_path, text)))
    assert r.returncode == 2, r.stdout + r.stderr
    assert needle in r.stderr and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_a_fleet_budget_is_split_by_the_power_each_model_drew_alone() -> None:
    assert fleet_budget_split([432.0, 216.0], 1000.0) is None  # it does not bind
    assert fleet_budget_split([300.0, 100.0], 200.0) == pytest.approx([150.0, 50.0])
    assert fleet_budget_split([300.0, 100.0], None) is None


def test_a_fleet_within_a_power_budget_is_replanned_within_its_shares(tmp_path: Path) -> None:
    """Two 8B models on L4s, each taking three (216 W) alone: 432 W, over a 400 W budget; re-planned within 200 W
    each, the fleet draws less, verified."""
    spec = _spec(tmp_path, "devices: [l4]\nshare_devices: false\nmodels:\n"
                           "  - {model: llama-3.1-8b, workload: 'chat:rate=8,duration=120'}\n"
                           "  - {model: qwen3-8b, workload: 'chat:rate=8,duration=120'}\n")
    s = in_terminal(tmp_path, "plan", "--fleet", str(spec), "--power-budget", "400", "--out", "plans", columns=120,
                    timeout=600)
    text = " ".join(assert_ok(s.text, s.exit_code).split())
    assert "(again: the fleet's 400 W budget binds), within 200 W" in text
    assert "shared devices: not tried (share_devices: false)" in text
    doc = json.loads(next((tmp_path / "plans").glob("fleet-*.json")).read_text())
    assert doc["power_budget_w"] == 400 and doc["power_w"] <= 400 and doc["verified"]
