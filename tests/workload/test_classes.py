"""Workload classes: ``--workload chat:rate=10 --workload batch:count=5000,deadline=6h`` read and built."""

from __future__ import annotations

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
