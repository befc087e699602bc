"""Idempotent writes and filtered reads of result rows.

Writes are ``INSERT … ON CONFLICT DO NOTHING`` on (document id, task, pack version), so a chunk delivered
twice (at-least-once) stores each result once. SQLite runs in WAL mode with a busy timeout so a reader
(``nightclerk results``) and a writer (the worker) do not block each other.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, OperationalError

from nightclerk.shared.errors import ConfigError, StoreError, StoreUnavailable
from nightclerk.shared.results import LabelScore, ResultRow, Timings
from nightclerk.shared.settings import Settings
from nightclerk.shared.store.pg_copy import copy_insert
from nightclerk.shared.store.schema import results_table
from nightclerk.shared.store.statistics import TableStatistics

_IN_CLAUSE_BATCH = 500
_KEY = ("document_id", "task", "pack_version")


def _normalise_url(url: str) -> str:
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _sqlite_pragmas(dbapi_connection: Any, _: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


class ResultStore:
    def __init__(self, url: str, *, schema: str | None = None) -> None:
        url = _normalise_url(url)
        self.url = sa.engine.make_url(url)
        self.dialect = self.url.get_backend_name()
        if self.dialect not in ("sqlite", "postgresql"):
            raise ConfigError(f"result store supports sqlite and postgresql, not {self.dialect}")
        if schema and self.dialect != "postgresql":
            raise ConfigError("database_schema applies to PostgreSQL only")
        self.schema = schema
        if self.dialect == "sqlite":
            database = self.url.database
            if database and database != ":memory:":
                Path(database).parent.mkdir(parents=True, exist_ok=True)
            self.engine = sa.create_engine(url, connect_args={"timeout": 30})
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
        else:
            # a database behind a dead link must fail a connect in seconds, not hang a worker's chunk
            self.engine = sa.create_engine(url, pool_pre_ping=True, connect_args={"connect_timeout": 10})
        self.metadata = sa.MetaData(schema=schema)
        self.table = results_table(self.metadata)
        self.statistics = TableStatistics(self.engine, self.table)  # see statistics.py for why

    def describe(self) -> str:
        """The URL without its password, for logs."""
        return self.url.render_as_string(hide_password=True)

    def create_schema(self) -> None:
        with self._begin() as conn:
            if self.schema:
                conn.execute(sa.schema.CreateSchema(self.schema, if_not_exists=True))
            self.metadata.create_all(conn, checkfirst=True)

    def upsert(self, rows: Sequence[ResultRow]) -> int:
        """Store rows; return how many were new (the others were already stored)."""
        if not rows:
            return 0
        params = [_to_params(row) for row in rows]
        with self._begin() as conn:
            if self.url.get_driver_name() == "psycopg":  # PostgreSQL by COPY: see pg_copy.py for why
                stored = copy_insert(conn, self.table, params, _KEY)
            else:
                insert = (sqlite.insert if self.dialect == "sqlite" else postgresql.insert)(self.table)
                statement = insert.on_conflict_do_nothing(index_elements=list(_KEY))
                returning = statement.returning(self.table.c.document_id)
                stored = len(conn.execute(returning, params).all())
        self.statistics.wrote(stored)
        return stored

    def existing(self, document_ids: Iterable[str], task: str, pack_version: str) -> set[str]:
        """Which of these documents already have a result for this task and pack version."""
        ids = list(document_ids)
        c = self.table.c
        if self.dialect == "postgresql":  # one array parameter: a 1,024-id IN list cost 20 ms to build
            wanted = sa.any_(sa.bindparam("ids", ids, type_=postgresql.ARRAY(sa.String)))
            parts = [c.document_id == wanted]
        else:
            parts = [c.document_id.in_(ids[start : start + _IN_CLAUSE_BATCH])
                     for start in range(0, len(ids), _IN_CLAUSE_BATCH)]  # fmt: skip
        found: set[str] = set()
        with self._begin() as conn:
            for part in parts:
                query = sa.select(c.document_id).where(part, c.task == task, c.pack_version == pack_version)
                found.update(conn.execute(query).scalars())
        return found

    def get(self, document_id: str, task: str, pack_version: str) -> ResultRow | None:
        """The row of one (document id, task, pack version), or None."""
        c = self.table.c
        query = sa.select(self.table).where(
            c.document_id == document_id, c.task == task, c.pack_version == pack_version
        )
        with self._begin() as conn:
            record = conn.execute(query).mappings().first()
        return None if record is None else _from_record(record)

    def count(
        self, *, kind: str | None = None, task: str | None = None, since: datetime | None = None
    ) -> int:
        query = sa.select(sa.func.count()).select_from(self.table)
        query = self._filter(query, kind=kind, task=task, since=since)
        with self._begin() as conn:
            return int(conn.execute(query).scalar_one())

    def rows(
        self,
        *,
        kind: str | None = None,
        task: str | None = None,
        since: datetime | None = None,
        limit: int | None = None,
    ) -> Iterator[ResultRow]:
        query = self._filter(sa.select(self.table), kind=kind, task=task, since=since)
        query = query.order_by(self.table.c.created_at, self.table.c.document_id)
        if limit is not None:
            query = query.limit(limit)
        with self._begin() as conn:
            for record in conn.execution_options(stream_results=True).execute(query).mappings():
                yield _from_record(record)

    def drop(self) -> None:
        """Remove the table (and the schema, on PostgreSQL). For tests and ``results --reset``."""
        with self._begin() as conn:
            self.metadata.drop_all(conn, checkfirst=True)
            if self.schema:
                conn.execute(sa.schema.DropSchema(self.schema, cascade=True, if_exists=True))

    def close(self) -> None:
        self.engine.dispose()

    def _filter(self, query: Any, *, kind: str | None, task: str | None, since: datetime | None) -> Any:
        c = self.table.c
        if kind:
            query = query.where(c.kind == kind)
        if task:
            query = query.where(c.task == task)
        if since:
            query = query.where(c.created_at >= since)
        return query

    def transaction(self) -> AbstractContextManager[sa.Connection]:
        """A connection in a transaction on the store's database, with the store's error mapping.

        For tables that live beside ``results`` (downstream's delivery log).
        """
        return self._begin()

    @contextmanager
    def _begin(self) -> Iterator[sa.Connection]:
        # Errors are re-raised without their cause: a driver's message may quote the statement's parameters.
        try:
            with self.engine.begin() as conn:
                yield conn
        except (OperationalError, psycopg.OperationalError) as exc:  # psycopg's own: from the COPY path
            name = type(getattr(exc, "orig", exc)).__name__
            raise StoreUnavailable(f"result store {self.describe()} unreachable: {name}") from None
        except (DBAPIError, psycopg.Error) as exc:
            name = type(getattr(exc, "orig", exc)).__name__
            raise StoreError(f"result store {self.describe()} refused the statement: {name}") from None


def _to_params(row: ResultRow) -> dict[str, Any]:
    params = row.model_dump()  # one call: labels and timings come out as plain lists and dicts
    params["top_label"], params["top_score"] = row.top_label, row.top_score
    if row.summary is not None:  # PostgreSQL text cannot hold NUL; a summary quoting one would fail its chunk
        params["summary"] = row.summary.replace("\x00", "")
    return params


def _from_record(record: Any) -> ResultRow:
    created = record["created_at"]
    if created.tzinfo is None:  # SQLite keeps no zone; nightclerk writes UTC
        created = created.replace(tzinfo=UTC)
    return ResultRow(
        document_id=record["document_id"],
        kind=record["kind"],
        task=record["task"],
        pack_name=record["pack_name"],
        pack_version=record["pack_version"],
        precision=record["precision"],
        labels=[LabelScore(**item) for item in record["labels"]],
        summary=record["summary"],
        timings=Timings(**record["timings"]),
        worker_id=record["worker_id"],
        chunk_id=record["chunk_id"],
        created_at=created,
    )


def open_store(settings: Settings, *, create: bool = True) -> ResultStore:
    store = ResultStore(settings.resolved_database_url, schema=settings.database_schema)
    if create:
        store.create_schema()
    return store
