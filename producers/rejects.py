"""Rejected records: where, which document (when known) and why -- never the document's text."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO


@dataclass(frozen=True)
class Reject:
    file: str
    line: int
    document_id: str | None
    reason: str

    def to_json(self) -> str:
        # ensure_ascii: a file name with undecodable bytes is escaped, never written raw
        return json.dumps(asdict(self), ensure_ascii=True)


def default_rejects_path(now: datetime | None = None) -> Path:
    """``rejects-<UTC time>.jsonl`` in the working directory."""
    return Path(f"rejects-{(now or datetime.now(UTC)):%Y%m%dT%H%M%SZ}.jsonl")


class RejectLog:
    """Rejects as JSON lines; the file is created on the first reject unless ``always``."""

    def __init__(self, path: Path, *, always: bool) -> None:
        self.path = path
        self.count = 0
        self._handle: IO[str] | None = self._open() if always else None

    def _open(self) -> IO[str]:
        return self.path.open("w", encoding="ascii")

    def write(self, reject: Reject) -> None:
        if self._handle is None:
            self._handle = self._open()
        self._handle.write(reject.to_json() + "\n")
        self.count += 1

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
