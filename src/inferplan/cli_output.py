"""What every CLI verb prints through: a console for people, stderr for progress, JSON for scripts."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console

out = Console(width=None if sys.stdout.isatty() else 120)  # 120 columns when piped, so tables stay readable
err = Console(stderr=True)


def emit_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, default=str) + "\n")
