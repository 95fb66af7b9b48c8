"""The workbench's pages over a real registry, in-process: what each shows, and how bad input is refused."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

from httpx import Response
from starlette.testclient import TestClient

from inferplan import api
from tests.ui.conftest import LOCAL, run_ids

# a Qwen3-0.6B-shaped config.json, as a model's Hugging Face repository has it
QWEN3_SMALL = {"model_type": "qwen3", "hidden_size": 1024, "intermediate_size": 3072, "num_hidden_layers": 28,
               "num_attention_heads": 16, "num_key_value_heads": 8, "head_dim": 128, "vocab_size": 151936,
               "max_position_embeddings": 40960, "tie_word_embeddings": True}


def shown(r: Response) -> str:
    """The page's text as a person reads it (entities decoded)."""
    return html.unescape(r.text)


def figures(page: str) -> list[list[dict[str, object]]]:
    """The traces of every plotly figure on a page, decoded from its ``Plotly.newPlot(id, traces, ...)``."""
    out = []
    for m in re.finditer(r'Plotly\.newPlot\(\s*"[^"]+",\s*', page):
        traces, _ = json.JSONDecoder().raw_decode(page, m.end())
        out.append(traces)
    return out


def no_trace(text: str) -> None:
    assert "Traceback" not in text and 'File "' not in text


def test_the_runs_page_lists_every_kind_and_filters(client: TestClient, registry_copy: Path) -> None:
    page = client.get("/runs").text
    for kind in ("sim", "plan", "fit"):
        for run_id in run_ids(registry_copy, kind):
            assert f'href="/runs/{run_id}"' in page
    assert "4 runs" in page
    sims = client.get("/runs", params={"kind": "sim"}).text
    assert "2 runs" in sims and not re.search(r'href="/runs/plan-', sims)
    a100 = client.get("/runs", params={"device": "a100-80gb"}).text  # a simulation's device
    assert "1 run." in a100
    l4 = client.get("/runs", params={"device": "l4"}).text  # the plan considered it, the fit ran on it
    assert "2 runs" in l4
    assert "0 runs" in client.get("/runs", params={"until": "2000-01-01"}).text
    assert "1 run." in client.get("/runs", params={"q": "fit llama"}).text


def test_the_runs_page_pages_through_a_large_registry(client: TestClient, registry_copy: Path) -> None:
    reg = api.Registry(registry_copy)
    for k in range(120):
        reg.add(f"validate-{k:04d}", "validate", f"validation {k}", {"model": "m"}, {"median_ape_pct": k}, None, None)
    first = client.get("/runs", params={"kind": "validate"}).text
    assert "120 runs, page 1 of 3" in first and "validate-0119" in first and "validate-0069" not in first
    third = client.get("/runs", params={"kind": "validate", "page": 3}).text
    assert "validate-0000" in third and "median error 0.0%" in third
    assert client.get("/runs", params={"page": "x"}).status_code == 400


def test_a_simulation_shows_its_report_sections_and_files(client: TestClient, registry_copy: Path) -> None:
    run_id = run_ids(registry_copy, "sim")[0]
    page = client.get(f"/runs/{run_id}").text
    for title in ("Totals", "Latency (ms)", "Latency distributions", "Over time", "Inputs"):
        assert f"<h2>{title}</h2>" in page
    assert page.count('class="plotly-graph-div"') >= 8  # noqa: PLR2004  (4 CDFs, 6 time series)
    csv = client.get(f"/runs/{run_id}/files/requests.csv")
    assert csv.status_code == 200 and csv.text.startswith("request_id,arrival_s,")
    assert len(csv.text.splitlines()) == 1 + api.Registry(registry_copy).get(run_id).summary["num_requests"]
    assert client.get(f"/runs/{run_id}/report").headers["content-type"].startswith("text/html")


def test_a_plan_shows_the_fleet_trade_offs_verification_and_deploy_files(client: TestClient,
                                                                         registry_copy: Path) -> None:
    run_id = run_ids(registry_copy, "plan")[0]
    page = client.get(f"/runs/{run_id}").text
    for title in ("Chosen fleet", "Trade-offs", "Verification run: latency", "Verification run: over time",
                  "Deploy files", "What if"):
        assert f"<h2>{title}</h2>" in page, title
    assert "Why this fleet:" in page and "SLO ttft_p90" in page and "SLO tpot_p90" in page
    doc = json.loads(client.get(f"/runs/{run_id}/files/plan.json").text)
    trade_offs = figures(page)[:3]  # cost against TTFT, TPOT and quality loss
    chosen = [next(t for t in fig if t["name"] == "chosen") for fig in trade_offs]
    assert all(t["customdata"] == [p["label"] for p in doc["fleet"]] for t in chosen)  # the chosen point, starred
    row = next(p for p in doc["trade_offs"] if p["config"] == doc["fleet"][0]["label"])
    assert chosen[0]["y"] == [row["ttft_s"] * 1e3] and chosen[1]["y"] == [row["tpot_s"] * 1e3]
    launch = client.get(f"/runs/{run_id}/files/deploy/launch.sh")
    assert launch.status_code == 200 and launch.text == Path(doc["artifacts"]["launch.sh"]).read_text()


def test_only_files_a_run_wrote_are_served(client: TestClient, registry_copy: Path) -> None:
    run_id = run_ids(registry_copy, "plan")[0]
    for name in ("../../runs.sqlite", "..%2F..%2Fruns.sqlite", "/etc/passwd", "deploy/../../runs.sqlite"):
        r = client.get(f"/runs/{run_id}/files/{name}")
        assert r.status_code == 404, name
        no_trace(r.text)


def test_an_unknown_run_is_a_404_page(client: TestClient) -> None:
    r = client.get("/runs/sim-20000101-000000-abcdef")
    assert r.status_code == 404 and "no run 'sim-20000101-000000-abcdef'" in shown(r)
    no_trace(r.text)
    part = client.get("/runs/sim")  # a part of an id names no run here (the CLI's shortcut is for typing)
    assert part.status_code == 404


def test_comparing_runs_overlays_cdfs_and_diffs_the_configuration(client: TestClient, registry_copy: Path) -> None:
    reg = api.Registry(registry_copy)
    h100, a100 = (reg.search(api.RunQuery(kind="sim", device=d))[0][0].id for d in ("h100-sxm", "a100-80gb"))
    plan = run_ids(registry_copy, "plan")[0]
    page = client.get("/compare", params=[("ids", h100), ("ids", a100), ("ids", plan)]).text
    for title in ("Metrics", "Latency distributions", "Configuration diff"):
        assert f"<h2>{title}</h2>" in page
    assert f"sim {a100}" in page and f"plan {plan}" in page
    assert re.search(r"<td>device</td><td>h100-sxm</td><td>a100-80gb</td>", page)
    one = client.get("/compare", params={"ids": a100})
    assert one.status_code == 400 and "two or more runs" in shown(one)


def test_fit_results_follow_the_inputs(client: TestClient) -> None:
    r = client.get("/fit/result", params={"model": "llama-3.1-8b", "device": "l4", "context": "4096"})
    assert r.status_code == 200
    assert "Memory per device (l4" in shown(r) and "Every weight format" in shown(r) and "likely range" in shown(r)
    big = client.get("/fit/result", params={"model": "llama-3.1-70b", "device": "l4"}).text
    assert "does not fit" in big
    bad = client.get("/fit/result", params={"model": "llama-3.1-8b", "device": "l4", "tp": "zero"})
    assert bad.status_code == 400 and "tp: expected a whole number, got 'zero'" in shown(bad)
    assert client.get("/fit", params={"device": "no-such-gpu"}).status_code == 400


def test_a_fit_can_be_kept_as_a_run(client: TestClient, registry_copy: Path) -> None:
    r = client.post("/fit/record", data={"model": "qwen3-8b", "device": "h100-sxm", "context": "8192"})
    assert r.status_code == 303
    run_id = r.headers["location"].rsplit("/", 1)[1]
    rec = api.Registry(registry_copy).get(run_id)
    assert rec.kind == "fit" and rec.summary["model"] == "qwen3-8b" and rec.summary["fits_context"] is True


def test_an_uploaded_config_is_parsed_by_the_cli_loader(client: TestClient) -> None:
    config = json.dumps(QWEN3_SMALL).encode()
    r = client.post("/fit/upload", data={"device": "l4"}, files={"config": ("config.json", config)})
    assert r.status_code == 303
    page = client.get(r.headers["location"]).text
    assert "uploaded config.json (upload:" in page and "Memory per device (l4" in page
    bad = client.post("/fit/upload", data={"device": "l4"}, files={"config": ("config.json", b"{not json")})
    assert bad.status_code == 400 and "config.json" in shown(bad)
    no_trace(bad.text)
    wrong = client.post("/fit/upload", files={"config": ("model.py", b"import os")})
    assert wrong.status_code == 400 and "expected a .json file" in shown(wrong)


def test_a_huge_upload_is_refused_before_it_is_read(registry_copy: Path) -> None:
    from inferplan.ui.app import Settings, create_app

    with TestClient(create_app(Settings(registry=registry_copy, max_upload_mb=1)), base_url=LOCAL) as small:
        r = small.post("/simulate", files={"trace": ("t.csv", b"x" * (3 * 2**20))}, data={"model": "llama-3.1-8b"})
    assert r.status_code == 413 and "the limit is 1 MiB" in shown(r)
    no_trace(r.text)


def test_a_bad_simulate_form_names_the_field_and_starts_nothing(client: TestClient) -> None:
    r = client.post("/simulate", data={"model": "llama-3.1-8b", "device": "h100-sxm", "rate": "fast"})
    assert r.status_code == 400 and "rate: expected a number, got 'fast'" in shown(r)
    assert 'value="fast"' in shown(r)  # the form keeps what was typed
    slo = client.post("/simulate", data={"slo": "ttft=soon"})
    assert slo.status_code == 400 and "slo:" in shown(slo)
    trace = client.post("/simulate", files={"trace": ("t.csv", b"a,b\n1,2\n")})
    assert trace.status_code == 400
    no_trace(trace.text)
    plan = client.post("/plan", data={"model": "llama-3.1-8b"})
    assert plan.status_code == 400 and "devices: pick at least one device type" in shown(plan)
    assert "No jobs yet" in client.get("/jobs").text


def test_the_plan_form_takes_autoscaling_in_minutes_as_the_cli_does(client: TestClient) -> None:
    from inferplan.ui.forms import plan_request
    from inferplan.ui.uploads import Uploads

    uploads = Uploads(Path("unused"), 1)
    req = plan_request({"workload": "diurnal-chat", "autoscale_window": "15", "scale_down_delay": "2"}, ["l4"],
                       uploads)
    assert req.autoscale_window_s == 900 and req.scale_down_delay_s == 120 and req.duration_s == 3600  # noqa: PLR2004
    kept = plan_request({"workload": "chat", "duration": "60", "max_quality_loss": "0"}, ["l4"], uploads)
    assert kept.autoscale_window_s is None and kept.duration_s == 60 and kept.max_quality_loss_pct == 0  # noqa: PLR2004
    bad = client.post("/plan", data={"devices": "l4", "autoscale_window": "soon"})
    assert bad.status_code == 400 and "autoscale_window: expected a number, got 'soon'" in shown(bad)
