"""Valid documents -> :class:`ChunkMessage` s of one kind, bounded in documents and in JSON bytes.

A chunk holds ``max_docs`` documents -- or, when only classification is asked, as many short documents as
add up to that many full ones, up to ``max_short_docs``: a document counts as its words over
:data:`FULL_WORDS` (what a 128-token pack reads of it), at most 1. Classifying costs what the tokens cost,
so 64 work orders of a dozen words made a chunk that inferred in a few milliseconds while its fixed costs
(message, lease, ledger, store round trips, change feed) stayed those of 64 notes: end to end ran at 0.46 of
the bare runtime on work orders, 0.6 in chunks of 512 (``make bench``). Summarizing costs per document
(its output tokens), so chunks that summarize keep ``max_docs``.

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
from nightclerk.shared.settings import Settings

AnyDocument: TypeAlias = EhrNote | RepairTicket | Literature
SEPARATOR_BYTES = 2  # ", " between two documents in kombu's JSON
_ENVELOPE_SLACK = 16
FULL_WORDS = 128  # a document of this many words or more counts as a full one


def document_work(document: AnyDocument) -> float:
    """The share of a full document's inference this one costs: words over :data:`FULL_WORDS`, at most 1."""
    return min(len(document.text.split(maxsplit=FULL_WORDS)), FULL_WORDS) / FULL_WORDS


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

    def __init__(
        self, tasks: Sequence[str], *, max_docs: int, max_bytes: int, max_short_docs: int = 0
    ) -> None:
        self.tasks: list[Task] = [cast(Task, task) for task in tasks]
        self.max_docs = max_docs
        self.max_bytes = max_bytes
        # short documents share a chunk only when nothing but classification is asked (see the module)
        self.grows = self.tasks == ["classify"] and max_short_docs > max_docs
        self.most_docs = max_short_docs if self.grows else max_docs
        self._envelope = envelope_bytes(self.tasks)
        if max_bytes - self._envelope < 1:
            raise ValueError(f"max_bytes {max_bytes} leaves no room beside the chunk envelope")
        self._buffers: dict[str, list[AnyDocument]] = {}
        self._sizes: dict[str, int] = {}
        self._work: dict[str, float] = {}  # full documents' worth in each buffer (when chunks grow)

    @classmethod
    def from_settings(cls, tasks: Sequence[str], settings: Settings) -> Chunker:
        """The chunker of ``chunk_docs``, ``chunk_max_bytes`` and ``chunk_max_docs``."""
        return cls(
            tasks,
            max_docs=settings.chunk_docs,
            max_bytes=settings.chunk_max_bytes,
            max_short_docs=settings.chunk_max_docs,
        )

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
        if self._full(kind, document, len(buffer)):
            done.append(self._emit(kind))
        return done

    def _full(self, kind: str, added: AnyDocument, count: int) -> bool:
        if not self.grows:
            return count >= self.max_docs
        self._work[kind] = self._work.get(kind, 0.0) + document_work(added)
        return count >= self.most_docs or self._work[kind] >= self.max_docs - 1e-9

    def flush(self) -> list[ChunkMessage]:
        return [self._emit(kind) for kind in list(self._buffers)]

    def _emit(self, kind: str) -> ChunkMessage:
        documents = self._buffers.pop(kind)
        self._sizes.pop(kind, None)
        self._work.pop(kind, None)
        return ChunkMessage(tasks=self.tasks, documents=documents)
