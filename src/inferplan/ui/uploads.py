"""Uploaded files: size-limited, named by their content's hash under the registry's folder, never executed.

A request names an upload by that hash (``upload:<16 hex digits>``), never by a path: the name is checked
against the pattern and the folder before anything is opened.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from inferplan.api import InputError

KINDS = {"trace": (".csv", ".jsonl", ".json"), "config": (".json",)}
_REF = re.compile(r"^upload:([0-9a-f]{16})(\.[a-z]+)$")


class UploadTooLarge(InputError):
    """An upload over the limit (HTTP 413)."""


@dataclass(frozen=True, slots=True)
class Uploads:
    folder: Path
    max_bytes: int

    def refuse_over(self, size: int, what: str, slack: int = 0) -> None:
        """``what`` of ``size`` bytes is refused (HTTP 413) above the limit (plus ``slack``: a form's own bytes)."""
        if size > self.max_bytes + slack:
            raise UploadTooLarge(f"{what} is {size / 2**20:.1f} MiB; the limit is {self.max_bytes / 2**20:.0f} MiB "
                                 "(start `inferplan ui --max-upload-mb N` to change it)")

    def save(self, kind: str, filename: str, data: bytes) -> str:
        """Keep ``data`` and return its reference; a wrong extension or size is an InputError saying which."""
        ext = Path(filename).suffix.lower()
        allowed = KINDS[kind]
        if ext not in allowed:
            raise InputError(f"{kind} upload '{filename}': expected a {' or '.join(allowed)} file")
        self.refuse_over(len(data), f"{kind} upload '{filename}'")
        if not data.strip():
            raise InputError(f"{kind} upload '{filename}' is empty")
        digest = hashlib.sha256(data).hexdigest()[:16]
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{digest}{ext}"
        if not path.exists():
            tmp = path.with_suffix(ext + ".part")
            tmp.write_bytes(data)
            tmp.replace(path)
        return f"upload:{digest}{ext}"

    def ref_for(self, path: str) -> str | None:
        """The reference of a stored upload, from the path a run recorded (None: not an upload of this folder)."""
        p = Path(path)
        inside = p.parent.resolve() == self.folder.resolve() if p.is_absolute() else False
        return f"upload:{p.name}" if inside and _REF.match(f"upload:{p.name}") else None

    def path(self, ref: str) -> Path:
        """The stored file a reference names; anything else (a path, a wrong name, a missing file) is refused."""
        m = _REF.match(ref)
        if m is None:
            raise InputError(f"'{ref}' is not an upload reference (expected upload:<16 hex digits>.<ext>)")
        path = self.folder / f"{m.group(1)}{m.group(2)}"
        if not path.is_file():
            raise InputError(f"upload '{ref}' is not on this workbench (upload the file again)")
        return path
