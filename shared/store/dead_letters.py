"""Dead letters: documents a worker gave up on, kept with their reason until an operator requeues them.

One row per (document id, task), beside ``results`` in the same database and schema. A document lands here
when inference failed on it alone ``document_attempts`` times, or when its chunk met an error the worker
could not place on one document. The row keeps the document itself (JSON, text included: the store is
where results of that text live already) so ``nightclerk dlq requeue`` can send it again; the reason holds
error types and ids, never text. Failing again adds to ``attempts``; requeueing deletes the row once the
document is back on the queue, so a document is always on the queue, stored, or here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from nightclerk.shared.documents import DOCUMENT_ADAPTER, EhrNote, Literature, RepairTicket
from nightclerk.shared.store.result_store import ResultStore

AnyDocument = EhrNote | RepairTicket | Literature


def dead_letters_table(metadata: sa.MetaData) -> sa.Table:
    return sa.Table(
        "dead_letters",
        metadata,
        sa.Column("document_id", sa.String(512), primary_key=True),
        sa.Column("task", sa.String(32), primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("pack_name", sa.String(64), nullable=False),
        sa.Column("pack_version", sa.String(64), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),  # error types and ids, never document text
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("chunk_id", sa.String(64), nullable=False),
        sa.Column("worker_id", sa.String(255), nullable=False),
        sa.Column("first_failed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_failed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("document", sa.JSON, nullable=False),
        sa.Index("ix_dead_letters_last_failed_at", "last_failed_at"),
    )


@dataclass(frozen=True)
class DeadLetter:
    document_id: str
    task: str
    kind: str
    pack_name: str
    pack_version: str
    reason: str
    attempts: int
    chunk_id: str
    worker_id: str
    first_failed_at: datetime
    last_failed_at: datetime
    document: dict[str, Any]

    def as_document(self) -> AnyDocument:
        """The document as it was pushed (validated again)."""
        document: AnyDocument = DOCUMENT_ADAPTER.validate_python(self.document)
        return document


@dataclass(frozen=True)
class Failure:
    """One document a worker gives up on, before it is written."""

    document: AnyDocument
    task: str
    pack_name: str
    pack_version: str
    reason: str
    attempts: int


class DeadLetterStore:
    def __init__(self, store: ResultStore) -> None:
        self.store = store
        self.metadata = sa.MetaData(schema=store.schema)
        self.table = dead_letters_table(self.metadata)
        self._ready = False

    def create_schema(self) -> None:
        self.store.create_schema()  # the schema (PostgreSQL) and the results table
        with self.store.transaction() as conn:
            self.metadata.create_all(conn, checkfirst=True)
        self._ready = True

    def record(self, failures: Sequence[Failure], *, chunk_id: str, worker_id: str) -> None:
        """Write or update one row per failure; ``attempts`` adds up across deliveries and requeues."""
        if not failures:
            return
        if not self._ready:
            self.create_schema()
        now = datetime.now(UTC)
        rows = [
            {
                "document_id": f.document.id,
                "task": f.task,
                "kind": f.document.kind,
                "pack_name": f.pack_name,
                "pack_version": f.pack_version,
                "reason": f.reason,
                "attempts": f.attempts,
                "chunk_id": chunk_id,
                "worker_id": worker_id,
                "first_failed_at": now,
                "last_failed_at": now,
                "document": f.document.model_dump(mode="json"),
            }
            for f in failures
        ]
        insert = (sqlite.insert if self.store.dialect == "sqlite" else postgresql.insert)(self.table)
        excluded = insert.excluded
        replaced = (
            "reason",
            "pack_name",
            "pack_version",
            "chunk_id",
            "worker_id",
            "last_failed_at",
            "document",
        )
        statement = insert.on_conflict_do_update(
            index_elements=["document_id", "task"],
            set_={
                "attempts": self.table.c.attempts + excluded.attempts,
                **{name: getattr(excluded, name) for name in replaced},
            },
        )
        with self.store.transaction() as conn:
            conn.execute(statement, rows)

    def letters(
        self,
        *,
        task: str | None = None,
        kind: str | None = None,
        document_ids: Iterable[str] | None = None,
        limit: int | None = None,
    ) -> list[DeadLetter]:
        c = self.table.c
        query = sa.select(self.table).order_by(c.last_failed_at, c.document_id, c.task)
        if task:
            query = query.where(c.task == task)
        if kind:
            query = query.where(c.kind == kind)
        if document_ids is not None:
            query = query.where(c.document_id.in_(list(document_ids)))
        if limit is not None:
            query = query.limit(limit)
        if not self._exists():
            return []
        with self.store.transaction() as conn:
            return [DeadLetter(**dict(record)) for record in conn.execute(query).mappings()]

    def count(self) -> dict[str, int]:
        """Dead letters per task (an empty dict when there are none, or no table yet)."""
        if not self._exists():
            return {}
        c = self.table.c
        query = sa.select(c.task, sa.func.count()).group_by(c.task).order_by(c.task)
        with self.store.transaction() as conn:
            return {task: int(n) for task, n in conn.execute(query).all()}

    def delete(self, letters: Iterable[DeadLetter]) -> int:
        keys = [(letter.document_id, letter.task) for letter in letters]
        if not keys:
            return 0
        c = self.table.c
        with self.store.transaction() as conn:
            result = conn.execute(sa.delete(self.table).where(sa.tuple_(c.document_id, c.task).in_(keys)))
        return int(result.rowcount or 0)

    def _exists(self) -> bool:
        if self._ready:
            return True
        with self.store.transaction() as conn:
            self._ready = sa.inspect(conn).has_table("dead_letters", schema=self.store.schema)
        return self._ready
