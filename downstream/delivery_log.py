"""The record of what a sink delivered: one row per (sink, document id, task, pack version).

It lives beside the ``results`` table (same database, same schema). A row is written once the outcome is
final -- delivered, rejected by the endpoint, or skipped -- so a feed entry seen twice is delivered once, and
an operator can see what went where and when.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from nightclerk.shared.store import ResultStore

Outcome = Literal["delivered", "rejected", "skipped"]


def deliveries_table(metadata: sa.MetaData) -> sa.Table:
    return sa.Table(
        "deliveries",
        metadata,
        sa.Column("sink", sa.String(64), primary_key=True),
        sa.Column("document_id", sa.String(512), primary_key=True),
        sa.Column("task", sa.String(32), primary_key=True),
        sa.Column("pack_version", sa.String(64), primary_key=True),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("http_status", sa.Integer),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("idempotency_key", sa.String(64), nullable=False),
        sa.Column("reason", sa.Text),  # status codes and error types, never a response body
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
    )


class DeliveryLog:
    def __init__(self, store: ResultStore, sink: str) -> None:
        self.store = store
        self.sink = sink
        self.metadata = sa.MetaData(schema=store.schema)
        self.table = deliveries_table(self.metadata)

    def create_schema(self) -> None:
        self.store.create_schema()  # the schema (PostgreSQL) and the results table
        with self._begin() as conn:
            self.metadata.create_all(conn, checkfirst=True)

    def done(self, document_id: str, task: str, pack_version: str) -> bool:
        c = self.table.c
        query = sa.select(c.outcome).where(
            c.sink == self.sink, c.document_id == document_id, c.task == task, c.pack_version == pack_version
        )
        with self._begin() as conn:
            return conn.execute(query).first() is not None

    def record(
        self,
        document_id: str,
        task: str,
        pack_version: str,
        *,
        outcome: Outcome,
        attempts: int,
        idempotency_key: str,
        http_status: int | None = None,
        reason: str | None = None,
    ) -> None:
        insert = (sqlite.insert if self.store.dialect == "sqlite" else postgresql.insert)(self.table)
        values = {
            "sink": self.sink,
            "document_id": document_id,
            "task": task,
            "pack_version": pack_version,
            "outcome": outcome,
            "http_status": http_status,
            "attempts": attempts,
            "idempotency_key": idempotency_key,
            "reason": reason,
            "finished_at": datetime.now(UTC),
        }
        statement = insert.values(values).on_conflict_do_nothing(
            index_elements=["sink", "document_id", "task", "pack_version"]
        )
        with self._begin() as conn:
            conn.execute(statement)

    def rows(self) -> list[dict[str, Any]]:
        query = sa.select(self.table).where(self.table.c.sink == self.sink).order_by(self.table.c.finished_at)
        with self._begin() as conn:
            return [dict(record) for record in conn.execute(query).mappings()]

    def _begin(self) -> AbstractContextManager[sa.Connection]:
        return self.store.transaction()
