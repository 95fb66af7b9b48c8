"""Workload classes: ``--workload chat:rate=10 --workload batch:count=5000,deadline=6h`` read and built."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from inferplan.errors import InputError
from inferplan.workload.classes import parse_class, split_classes
from inferplan.workload.presets import make_workload


def test_a_class_reads_its_options_with_units() -> None:
    c = parse_class("batch:count=5000,deadline=6h,priority=2")
    assert (c.source, c.count, c.deadline_s, c.priority, c.rate) == ("batch", 5000, 21_600.0, 2, None)
    assert parse_class("chat:rate=2.5,duration=90").duration_s == 90.0
    assert parse_class("chat:duration=30m").duration_s == 1800.0
    assert not parse_class("chat").has_options
    # a path with colons and no options stays a path
    assert parse_class("C:/traces/conv.csv").source == "C:/traces/conv.csv"
    assert [c.source for c in split_classes("chat:rate=1 + batch:count=3")] == ["chat", "batch"]


@pytest.mark.parametrize(("text", "names"), [
    ("batch:count=5,deadlin=1h", "unknown option 'deadlin'"),
    ("batch:deadline=-1h", "deadline must be positive"),
    ("batch:deadline=soon", "not a duration"),
    ("batch:deadline=0h", "deadline must be positive"),
    ("chat:rate=0", "rate must be positive"),
    ("chat:count=2.5", "count=2.5 is not a whole number"),
    ("chat:rate=1,rate=2", "'rate' is given twice"),
    ("batch:priority=low", "priority=low is not a whole number"),
])
def test_a_bad_option_is_named(text: str, names: str) -> None:
    with pytest.raises(InputError, match=names):
        parse_class(text)


def test_a_mix_keeps_each_class_its_size_priority_and_deadline() -> None:
    wl = make_workload("chat:rate=4,count=400 + batch:count=100,deadline=20m", seed=3)
    assert wl.class_names == ("chat", "batch") and len(wl) == 500
    chat, batch = wl.class_index == 0, wl.class_index == 1
    assert chat.sum() == 400 and batch.sum() == 100
    assert (wl.arrival_s[batch] == 0).all()  # a batch arrives at once
    assert np.isinf(wl.deadline_s[chat]).all() and (wl.deadline_s[batch] == 1200).all()
    assert (wl.priority[chat] == 0).all() and (wl.priority[batch] == 1).all()  # the batch preset's
    assert wl.online[chat].all() and not wl.online[batch].any()
    assert wl.mixes_priorities and wl.has_deadlines
    assert wl.describe()["classes"] == "chat + batch"


def test_a_class_without_a_size_runs_as_long_as_the_longest_deadline() -> None:
    wl = make_workload("chat:rate=2 + batch:count=10,deadline=5m", seed=0)
    chat = wl.class_index == 0
    assert int(chat.sum()) == 600  # 2/s x 300 s


def test_one_class_with_options_is_a_plain_workload() -> None:
    wl = make_workload("batch:count=20,deadline=1h,priority=0")
    assert len(wl) == 20 and wl.class_names == ("batch",) and not wl.mixes_priorities
    assert (wl.deadline_s == 3600).all()


def test_shared_flags_that_would_be_ambiguous_in_a_mix_are_refused() -> None:
    with pytest.raises(InputError, match="give each its own rate or count"):
        make_workload("chat:rate=2 + batch:count=10", rate=3.0)
    with pytest.raises(InputError, match="both in the class and as a flag"):
        make_workload("chat:rate=2", rate=3.0)
    with pytest.raises(InputError, match="empty class"):
        make_workload("chat + ")


def test_a_class_named_twice_gets_two_names() -> None:
    wl = make_workload("chat:count=5 + chat:count=7,priority=3")
    assert wl.class_names == ("chat", "chat#2")
    assert (wl.priority[wl.class_index == 1] == 3).all()


def test_a_class_may_reshape_its_preset_into_a_client_of_its_own() -> None:
    """ServeGen's clients: each its own rate, burstiness and lengths."""
    wl = make_workload("chat:name=support,rate=2,arrivals=gamma,cv=4,input=300,output=50 + code:name=ide,rate=1",
                       seed=5, duration_s=3000)
    assert wl.class_names == ("support", "ide")
    support = wl.class_index == 0
    gaps = np.diff(wl.arrival_s[support])
    assert 2.5 < gaps.std() / gaps.mean() < 5.5  # Gamma gaps with CV 4 (a sample of 6,000)
    assert abs(np.median(wl.input_tokens[support]) - 300) < 20 and abs(np.median(wl.output_tokens[support]) - 50) < 5
    assert np.median(wl.input_tokens[~support]) > 600  # the code preset's own lengths


def test_the_multi_client_preset_keeps_the_measured_burstiness_of_each_azure_service() -> None:
    """Computed on the carried Azure 2023 traces: conversation gaps CV 1.09, code gaps CV 13.2."""
    wl = make_workload("multi-client", seed=0, duration_s=3600)
    assert wl.class_names == ("conversation", "code")
    cvs = []
    for k in range(2):
        gaps = np.diff(wl.arrival_s[wl.class_index == k])
        cvs.append(gaps.std() / gaps.mean())
    assert abs(cvs[0] - 1.09) < 0.1 and cvs[1] > 6


@pytest.mark.parametrize(("text", "names"), [
    ("chat:cv=3", "cv shapes gamma arrivals"),
    ("chat:period=1h", "period shapes diurnal arrivals"),
    ("chat:arrivals=bursty", "arrivals=bursty is not one of poisson, gamma"),
    ("chat:input=0", "input must be positive"),
])
def test_a_bad_shape_is_named(text: str, names: str) -> None:
    with pytest.raises(InputError, match=names):
        parse_class(text)


def test_a_trace_cannot_be_reshaped(tmp_path: Path) -> None:
    trace = tmp_path / "t.jsonl"
    trace.write_text("".join(json.dumps({"arrival_s": i, "input_tokens": 10, "output_tokens": 5}) + "\n"
                             for i in range(5)))
    with pytest.raises(InputError, match="shape a preset"):
        make_workload(f"{trace}:arrivals=gamma,cv=2 + chat:count=3")


def test_a_client_spec_file_is_a_mix(tmp_path: Path) -> None:
    spec = tmp_path / "clients.yaml"
    spec.write_text("clients:\n"
                    "  - {workload: chat, name: support, rate: 3, arrivals: gamma, cv: 2}\n"
                    "  - {workload: batch, count: 40, deadline: 30m}\n")
    wl = make_workload(str(spec), seed=1, duration_s=100)
    assert wl.class_names == ("support", "batch") and int((wl.class_index == 1).sum()) == 40
    assert (wl.deadline_s[wl.class_index == 1] == 1800).all()


@pytest.mark.parametrize(("text", "names"), [
    ("clients: []\n", "expected a list under 'clients:'"),
    ("clients:\n  - {rate: 3}\n", r"clients\[0\]: each client needs 'workload:'"),
    ("clients:\n  - {workload: chat, rat: 3}\n", r"clients\[0\]: unknown field 'rat'"),
    ("clients:\n  - {workload: chat}\n  - {workload: batch, deadline: soon}\n",
     r"clients\[1\]: deadline=soon is not a duration"),
    ("clients: [\n", "not valid YAML"),
])
def test_a_bad_client_spec_names_the_entry_and_field(tmp_path: Path, text: str, names: str) -> None:
    spec = tmp_path / "clients.yaml"
    spec.write_text(text)
    with pytest.raises(InputError, match=names):
        make_workload(str(spec))


def test_a_minimum_throughput_is_the_deadline_its_rate_implies() -> None:
    """batch:count=500,throughput=3000: all 500 queued at 0 must be done by their output tokens / 3000 s."""
    wl = make_workload("chat:rate=4,duration=60 + batch:count=500,throughput=3000", seed=2)
    batch = wl.class_index == 1
    assert wl.class_throughput == (0.0, 3000.0) and parse_class("batch:throughput=3000").throughput == 3000.0
    assert wl.deadline_s[batch] == pytest.approx(wl.output_tokens[batch].sum() / 3000)
    assert not np.isfinite(wl.deadline_s[~batch]).any()


@pytest.mark.parametrize(("text", "names"), [
    ("batch:count=5,deadline=1h,throughput=100", "a deadline or a throughput"),
    ("batch:count=5,throughput=-3", "throughput must be positive"),
    ("chat:rate=2,duration=60,throughput=100000", "throughput=100000 is above the rate its output tokens arrive at"),
])
def test_a_bad_throughput_is_named(text: str, names: str) -> None:
    with pytest.raises(InputError, match=names):
        make_workload(text, seed=0)
