"""The one exception type for bad input: its message is shown to the user as is."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class InputError(ValueError):
    """Input a person can fix: the message says what was wrong and how to fix it."""


def unknown_name(kind: str, name: str, known: Iterable[str], hint: str = "") -> InputError:
    """An InputError for an unknown catalog name, suggesting the closest known ones."""
    known = sorted(known)
    close = difflib.get_close_matches(name.lower(), known, n=3, cutoff=0.5)
    if not close:
        close = [k for k in known if name.lower().split("-")[0] in k][:3]
    suggestion = f"; did you mean {', '.join(close)}?" if close else ""
    tail = f" ({hint})" if hint else f" (run `inferplan {kind}s` to list them)"
    return InputError(f"unknown {kind} '{name}'{suggestion}{tail}")
