"""Searching the run registry (a real SQLite file): each filter narrows, the count is of every match."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from inferplan.api import InputError, Registry, RunQuery


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    reg = Registry(tmp_path / "runs.sqlite")
    rows = [("sim-a", "sim", "2026-12-01T10:00:00+00:00", {"model": "llama-3.1-8b", "device": "h100-sxm"}),
            ("sim-b", "sim", "2026-12-02T23:59:59+00:00", {"model": "qwen3-8b", "device": "l4"}),
            ("plan-c", "plan", "2026-12-03T08:00:00+00:00", {"model": "llama-3.1-8b", "devices": ["l4", "a10g"]}),
            ("fit-d", "fit", "2026-12-03T09:00:00+00:00", {"model": "qwen3-8b", "device": "b200"})]
    for run_id, kind, when, inputs in rows:
        reg.add(run_id, kind, f"{kind} of {inputs['model']}", inputs, {}, None, None)
        with sqlite3.connect(reg.path) as db:  # the creation time the test needs
            db.execute("UPDATE runs SET created_utc = ? WHERE id = ?", (when, run_id))
    return reg


def ids(reg: Registry, **query: object) -> list[str]:
    return [r.id for r in reg.search(RunQuery(**query))[0]]  # type: ignore[arg-type]


def test_each_filter_narrows_and_newest_come_first(registry: Registry) -> None:
    assert ids(registry) == ["fit-d", "plan-c", "sim-b", "sim-a"]
    assert ids(registry, kind="sim") == ["sim-b", "sim-a"]
    assert ids(registry, model="qwen3-8b") == ["fit-d", "sim-b"]
    assert ids(registry, device="l4") == ["plan-c", "sim-b"]  # a simulation's device or one a plan considered
    assert ids(registry, text="plan of llama") == ["plan-c"]
    assert ids(registry, since="2026-12-02", until="2026-12-02") == ["sim-b"]  # a date is its whole day
    assert ids(registry, kind="sim", model="llama-3.1-8b", device="h100-sxm") == ["sim-a"]


def test_a_page_of_matches_and_their_count(registry: Registry) -> None:
    page, total = registry.search(RunQuery(limit=2, offset=2))
    assert [r.id for r in page] == ["sim-b", "sim-a"] and total == 4  # noqa: PLR2004
    assert registry.facets() == {"kind": ["fit", "plan", "sim"], "model": ["llama-3.1-8b", "qwen3-8b"],
                                 "device": ["a10g", "b200", "h100-sxm", "l4"]}


def test_a_bad_date_says_what_was_expected(registry: Registry) -> None:
    with pytest.raises(InputError, match="until: expected a date such as 2026-12-01, got '2026-13-45'"):
        registry.search(RunQuery(until="2026-13-45"))
