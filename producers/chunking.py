"""Valid documents -> :class:`ChunkMessage` s of one kind, bounded in documents and in JSON bytes.

Sizes are measured as Celery puts them on the wire: kombu's JSON encoding (``json.dumps`` defaults, so a
non-ASCII character counts its ``\\uXXXX`` escape). The Redis transport base64-encodes the body on top
(about 4/3), so a chunk of ``chunk_max_bytes`` takes about 1.33 times that in Redis.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, TypeAlias, cast

from nightclerk.shared.documents import EhrNote, Literature, RepairTicket
from nightclerk.shared.messages import ChunkMessage, Task

AnyDocument: TypeAlias = EhrNote | RepairTicket | Literature
SEPARATOR_BYTES = 2  # ", " between two documents in kombu's JSON
_ENVELOPE_SLACK = 16


def json_bytes(value: Any) -> int:
    # kombu's encoder: json.dumps with its default separators and ensure_ascii (all output is ASCII)
    return len(json.dumps(value))


def document_json_bytes(document: AnyDocument) -> int:
    return json_bytes(document.model_dump(mode="json"))


def envelope_bytes(tasks: Sequence[Task]) -> int:
    """The JSON bytes of a chunk without its documents (longest timestamp, some slack)."""
    skeleton = ChunkMessage.model_construct(
        tasks=list(tasks), documents=[], pushed_at=datetime(2000, 1, 1, 0, 0, 0, 999_999, tzinfo=UTC)
    )
    return json_bytes(skeleton.model_dump(mode="json")) + _ENVELOPE_SLACK


def chunk_json_bytes(chunk: ChunkMessage) -> int:
    """The exact JSON bytes of a chunk as the Celery message carries it."""
    return json_bytes(chunk.model_dump(mode="json"))


class Chunker:
    """Collects documents per kind and hands out full chunks; :meth:`flush` hands out the rest."""

    def __init__(self, tasks: Sequence[str], *, max_docs: int, max_bytes: int) -> None:
        self.tasks: list[Task] = [cast(Task, task) for task in tasks]
        self.max_docs = max_docs
        self.max_bytes = max_bytes
        self._envelope = envelope_bytes(self.tasks)
        if max_bytes - self._envelope < 1:
            raise ValueError(f"max_bytes {max_bytes} leaves no room beside the chunk envelope")
        self._buffers: dict[str, list[AnyDocument]] = {}
        self._sizes: dict[str, int] = {}

    @property
    def max_document_bytes(self) -> int:
        """The largest document (JSON bytes) that fits a chunk on its own."""
        return self.max_bytes - self._envelope

    def add(self, document: AnyDocument, size: int | None = None) -> list[ChunkMessage]:
        """Add one document; return the chunks it completed (none, one, rarely two)."""
        size = document_json_bytes(document) if size is None else size
        if size > self.max_document_bytes:
            raise ValueError(f"document {document.id} is {size} JSON bytes, over {self.max_document_bytes}")
        done: list[ChunkMessage] = []
        kind = document.kind
        buffer = self._buffers.setdefault(kind, [])
        if buffer and self._sizes[kind] + SEPARATOR_BYTES + size > self.max_document_bytes:
            done.append(self._emit(kind))
            buffer = self._buffers.setdefault(kind, [])
        self._sizes[kind] = self._sizes.get(kind, 0) + (SEPARATOR_BYTES if buffer else 0) + size
        buffer.append(document)
        if len(buffer) >= self.max_docs:
            done.append(self._emit(kind))
        return done

    def flush(self) -> list[ChunkMessage]:
        return [self._emit(kind) for kind in list(self._buffers)]

    def _emit(self, kind: str) -> ChunkMessage:
        documents = self._buffers.pop(kind)
        self._sizes.pop(kind, None)
        return ChunkMessage(tasks=self.tasks, documents=documents)
