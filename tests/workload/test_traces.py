"""Trace loaders: real Azure files, the other formats, and malformed rows named by file, line and field."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from inferplan.errors import InputError
from inferplan.workload.traces import load_trace
from tests.conftest import TRACES

AZURE_CONV = TRACES / "azure_llm_2023_conv.csv"
needs_traces = pytest.mark.skipif(not AZURE_CONV.exists(), reason="shared Azure traces not present (../shared/data)")


@needs_traces
def test_azure_conv_trace_loads_with_its_published_row_count() -> None:
    """The Azure 2023 conversation trace has 19,366 rows over about an hour."""
    wl = load_trace(AZURE_CONV)
    assert len(wl) == 19_366
    assert 3400 < wl.duration_s < 3700
    assert wl.arrival_s[0] == 0 and (np.diff(wl.arrival_s) >= 0).all()


@needs_traces
def test_azure_code_trace_loads() -> None:
    """The code trace: 8,819 rows, long prompts, short outputs."""
    wl = load_trace(TRACES / "azure_llm_2023_code.csv")
    assert len(wl) == 8_819
    assert wl.input_tokens.mean() > 10 * wl.output_tokens.mean()


def test_malformed_row_names_file_line_and_field(tmp_path: Path) -> None:
    """A bad token count is reported with its line and column."""
    f = tmp_path / "t.csv"
    f.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46.6805900,374,44\n"
                 "2023-11-16 18:15:47.0000000,abc,10\n")
    with pytest.raises(InputError, match=r"t.csv, line 3: field 'ContextTokens'"):
        load_trace(f)


def test_skip_bad_rows_counts_them(tmp_path: Path) -> None:
    """With skip_bad_rows, bad rows are skipped and counted by field."""
    f = tmp_path / "t.csv"
    f.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46.6805900,374,44\n"
                 "bad-time,10,10\n2023-11-16 18:15:48.0000000,20,0\n2023-11-16 18:15:49.5,30,3\n")
    wl = load_trace(f, skip_bad_rows=True)
    assert len(wl) == 2
    assert wl.skipped_rows == {"TIMESTAMP": 1, "GeneratedTokens": 1}
    assert wl.arrival_s.tolist() == pytest.approx([0.0, 2.8194100])


def test_burstgpt_drops_failed_requests(tmp_path: Path) -> None:
    """BurstGPT rows with 0 response tokens were failures in the trace."""
    f = tmp_path / "b.csv"
    f.write_text("Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n"
                 "5,ChatGPT,100,20,120,Conversation log\n7,GPT-4,50,0,50,Conversation log\n9,ChatGPT,10,5,15,API log\n")
    wl = load_trace(f, skip_bad_rows=True)
    assert len(wl) == 2 and wl.arrival_s.tolist() == [0.0, 4.0]


def test_mooncake_shared_hash_prefixes(tmp_path: Path) -> None:
    """Mooncake requests sharing leading block hashes share a prefix chain."""
    f = tmp_path / "m.jsonl"
    rows = [{"timestamp": 0, "input_length": 1500, "output_length": 10, "hash_ids": [1, 2, 3]},
            {"timestamp": 1000, "input_length": 1100, "output_length": 5, "hash_ids": [1, 2, 9]},
            {"timestamp": 2000, "input_length": 600, "output_length": 5, "hash_ids": [4, 5]}]
    f.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    wl = load_trace(f)
    assert wl.prefix_chain is not None
    a, b, c = wl.prefix_chain
    assert a[:2] == b[:2] and a[2] != b[2] and c[0] != a[0]
    assert wl.arrival_s.tolist() == [0.0, 1.0, 2.0]


def test_generic_jsonl_with_classes(tmp_path: Path) -> None:
    """Generic JSONL: arrival_s, tokens, optional class and priority."""
    f = tmp_path / "g.jsonl"
    f.write_text('{"arrival_s": 0.5, "input_tokens": 10, "output_tokens": 2, "class": "offline", "priority": 2}\n'
                 '{"arrival_s": 0.1, "input_tokens": 20, "output_tokens": 3}\n')
    wl = load_trace(f)
    assert wl.input_tokens.tolist() == [20, 10] and wl.online.tolist() == [True, False]
    assert wl.priority.tolist() == [0, 2]


def test_bad_json_line_is_named(tmp_path: Path) -> None:
    """Invalid JSON is reported with its line."""
    f = tmp_path / "g.jsonl"
    f.write_text('{"arrival_s": 0, "input_tokens": 1, "output_tokens": 1}\n{oops\n')
    with pytest.raises(InputError, match="line 2"):
        load_trace(f)


def test_unknown_columns_are_explained(tmp_path: Path) -> None:
    """A CSV with unknown columns lists the formats that are understood."""
    f = tmp_path / "x.csv"
    f.write_text("a,b\n1,2\n")
    with pytest.raises(InputError, match="unrecognised trace columns"):
        load_trace(f)
