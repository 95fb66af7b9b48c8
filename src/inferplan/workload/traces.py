"""Trace loaders: Azure LLM inference CSV, BurstGPT CSV, Mooncake JSONL, generic CSV/JSONL.

A malformed row is an error naming the file, line and field; with
``skip_bad_rows`` it is skipped and counted by reason instead.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from inferplan.errors import InputError
from inferplan.workload.request import Workload

Row = dict[str, Any]


class BadRow(ValueError):
    """One row that cannot be read; ``field`` names the culprit."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"field '{field}': {problem}")
        self.field = field


def _int(row: Row, key: str, *, minimum: int = 1) -> int:
    raw = row.get(key)
    if raw is None or raw == "":
        raise BadRow(key, "missing")
    try:
        value = int(float(raw)) if isinstance(raw, str) and "." in raw else int(raw)
    except (TypeError, ValueError):
        raise BadRow(key, f"expected an integer, got {raw!r}") from None
    if value < minimum:
        raise BadRow(key, f"expected at least {minimum}, got {value}")
    return value


def _float(row: Row, key: str) -> float:
    raw = row.get(key)
    try:
        return float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise BadRow(key, f"expected a number, got {raw!r}") from None


def _azure_time(row: Row) -> float:
    raw = row.get("TIMESTAMP")
    if not isinstance(raw, str):
        raise BadRow("TIMESTAMP", "missing")
    stamp = raw.strip()
    if "." in stamp:  # Azure writes 7 fractional digits; datetime takes at most 6
        head, frac = stamp.split(".", 1)
        stamp = f"{head}.{frac[:6]}"
    try:
        return datetime.fromisoformat(stamp).timestamp()
    except ValueError:
        raise BadRow("TIMESTAMP", f"expected 'YYYY-MM-DD HH:MM:SS.fffffff', got {raw!r}") from None


def _azure(row: Row) -> dict[str, Any]:
    return {"t": _azure_time(row), "in": _int(row, "ContextTokens"), "out": _int(row, "GeneratedTokens")}


def _burstgpt(row: Row) -> dict[str, Any]:
    out = _int(row, "Response tokens", minimum=0)
    if out == 0:
        raise BadRow("Response tokens", "0 (a request that failed in the trace)")
    return {"t": _float(row, "Timestamp"), "in": _int(row, "Request tokens"), "out": out}


def _mooncake(row: Row) -> dict[str, Any]:
    hashes = row.get("hash_ids") or []
    if not isinstance(hashes, list):
        raise BadRow("hash_ids", "expected a list of block hash ids")
    return {"t": _float(row, "timestamp") / 1000.0, "in": _int(row, "input_length"),
            "out": _int(row, "output_length"), "hash_ids": hashes}


def _generic(row: Row) -> dict[str, Any]:
    key = "arrival_s" if "arrival_s" in row else "timestamp"
    rec: dict[str, Any] = {"t": _float(row, key), "in": _int(row, "input_tokens"), "out": _int(row, "output_tokens")}
    for opt in ("prefix_id", "prefix_tokens", "session_id", "priority"):
        if row.get(opt) not in (None, ""):
            rec[opt] = _int(row, opt, minimum=-(2**62))
    if row.get("class") not in (None, ""):
        if row["class"] not in ("online", "offline"):
            raise BadRow("class", f"expected 'online' or 'offline', got {row['class']!r}")
        rec["online"] = row["class"] == "online"
    return rec


FORMATS: dict[str, tuple[Callable[[Row], dict[str, Any]], tuple[str, ...]]] = {
    "azure": (_azure, ("TIMESTAMP", "ContextTokens", "GeneratedTokens")),
    "burstgpt": (_burstgpt, ("Timestamp", "Request tokens", "Response tokens")),
    "mooncake": (_mooncake, ("timestamp", "input_length", "output_length")),
    "generic": (_generic, ("input_tokens", "output_tokens")),
}


def _rows(path: Path) -> Iterator[tuple[int, Row]]:
    if path.suffix in (".jsonl", ".json"):
        with path.open() as fh:
            for lineno, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as exc:
                    yield lineno, {"__error__": f"not valid JSON ({exc.msg})"}
                    continue
                yield lineno, obj if isinstance(obj, dict) else {"__error__": "expected a JSON object"}
    else:
        with path.open(newline="") as fh:
            reader = csv.DictReader(fh)
            for row in reader:
                yield reader.line_num, row


def detect_format(path: Path) -> str:
    for _, first in _rows(path):
        for name, (_, required) in FORMATS.items():
            if all(k in first for k in required):
                return name
        cols = ", ".join(map(str, first))
        raise InputError(
            f"{path}: unrecognised trace columns ({cols}); expected Azure (TIMESTAMP,ContextTokens,GeneratedTokens), "
            "BurstGPT, Mooncake JSONL, or generic (arrival_s,input_tokens,output_tokens)"
        )
    raise InputError(f"{path}: the file is empty")


def load_trace(path: Path, *, fmt: str | None = None, skip_bad_rows: bool = False) -> Workload:
    """Read a trace file into a Workload (times shifted to start at 0).

    A folder, an unreadable file or a binary one is an InputError naming the path, never a traceback.
    """
    if not path.exists():
        raise InputError(f"{path}: no such trace file (give a workload preset name or a trace file)")
    if path.is_dir():
        raise InputError(f"{path} is a folder; --workload takes a trace file (CSV or JSONL) inside it, or a preset")
    try:
        return _load(path, fmt, skip_bad_rows)
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a text file (a trace is UTF-8 CSV or JSONL); is this the right file?") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read the trace ({exc.strerror or exc}); check the path and its "
                         "permissions") from None


def _load(path: Path, fmt: str | None, skip_bad_rows: bool) -> Workload:
    fmt = fmt or detect_format(path)
    if fmt not in FORMATS:
        raise InputError(f"unknown trace format '{fmt}'; choose one of {', '.join(FORMATS)}")
    parse = FORMATS[fmt][0]
    recs: list[dict[str, Any]] = []
    skipped: Counter[str] = Counter()
    for lineno, row in _rows(path):
        try:
            if "__error__" in row:
                raise BadRow("line", row["__error__"])
            recs.append(parse(row))
        except BadRow as exc:
            if not skip_bad_rows:
                raise InputError(f"{path}, line {lineno}: {exc} (fix the row, or pass --skip-bad-rows)") from None
            skipped[exc.field] += 1
    if not recs:
        raise InputError(f"{path}: no usable rows")
    groups, plen, chains = _prefix_columns(recs)
    return Workload.build(
        [r["t"] for r in recs],
        [r["in"] for r in recs],
        [r["out"] for r in recs],
        prefix_group=groups,
        prefix_tokens=plen,
        session_id=[r.get("session_id", -1) for r in recs],
        priority=[r.get("priority", 0) for r in recs],
        online=[r.get("online", True) for r in recs],
        name=path.stem,
        source=str(path),
        skipped_rows=dict(skipped),
        prefix_chain=chains,
        chain_block_tokens=MOONCAKE_BLOCK_TOKENS,
    )


MOONCAKE_BLOCK_TOKENS = 512


def _prefix_columns(recs: list[dict[str, Any]]) -> tuple[list[int], list[int], tuple[tuple[int, ...], ...] | None]:
    """Shared-prefix identity per request.

    Explicit ``prefix_id``/``prefix_tokens`` become a prefix group. Mooncake's
    ``hash_ids`` (one per 512-token block, chained) become a chain: block j's id
    names the whole content up to and including block j, so two requests share a
    cached block exactly when their leading hashes agree.
    """
    groups = [r.get("prefix_id", -1) for r in recs]
    lengths = [r.get("prefix_tokens", 0) for r in recs]
    if not any("hash_ids" in r for r in recs):
        return groups, lengths, None
    ids: dict[tuple[Any, ...], int] = {}
    chains: list[tuple[int, ...]] = []
    for r in recs:
        hashes = tuple(r.get("hash_ids") or ())
        chains.append(tuple(ids.setdefault(hashes[: k + 1], len(ids)) for k in range(len(hashes))))
    return groups, lengths, tuple(chains)
