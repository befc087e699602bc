"""PostgreSQL bulk insert: COPY into a temporary table, then one ``INSERT … ON CONFLICT DO NOTHING`` from it.

Hand-written because SQLAlchemy has no COPY. Its executemany (``insertmanyvalues``) took 270-310 ms to store
a chunk of 1,024 work-order results, a fifth of the worker's time on that corpus (``python -m
bench.chunk_steps``), nearly all of it on the client building parameters: the server's own insert was 13-29
ms. COPY through psycopg takes about 27 ms for the same rows, conflicts included. It runs on the psycopg
connection under the caller's SQLAlchemy transaction, so it commits or rolls back with it; the caller makes
one such insert per transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg
import sqlalchemy as sa
from psycopg import sql
from pydantic_core import to_json

_STAGE = sql.Identifier("nightclerk_stage")


def copy_insert(
    conn: sa.Connection, table: sa.Table, rows: Sequence[dict[str, Any]], conflict_key: Sequence[str]
) -> int:
    """Insert ``rows`` (column name -> value) into ``table``, skipping the ones whose ``conflict_key`` is
    already there; how many were new. psycopg's errors are raised as they come (the caller maps them)."""
    raw = conn.connection.driver_connection
    if not isinstance(raw, psycopg.Connection):
        raise TypeError(f"COPY needs a psycopg connection, not {type(raw).__name__}")
    target = sql.Identifier(table.schema, table.name) if table.schema else sql.Identifier(table.name)
    columns = [column.name for column in table.columns]
    as_json = {column.name for column in table.columns if isinstance(column.type, sa.JSON)}
    names = sql.SQL(", ").join(sql.Identifier(name) for name in columns)
    with raw.cursor() as cursor:
        # One stage per connection, emptied by every commit. Not made and dropped per chunk: that would leave
        # dead rows in the system catalogs at every chunk, and autovacuum may be off. LIKE copies the columns
        # and NOT NULL; the target's keys and checks apply on the INSERT below.
        cursor.execute(
            sql.SQL("CREATE TEMPORARY TABLE IF NOT EXISTS {} (LIKE {}) ON COMMIT DELETE ROWS").format(
                _STAGE, target
            )
        )
        with cursor.copy(sql.SQL("COPY {} ({}) FROM STDIN").format(_STAGE, names)) as copy:
            for row in rows:
                copy.write_row([_json(row[name]) if name in as_json else row[name] for name in columns])
        cursor.execute(
            sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {} ON CONFLICT ({}) DO NOTHING").format(
                target,
                names,
                names,
                _STAGE,
                sql.SQL(", ").join(sql.Identifier(name) for name in conflict_key),
            )
        )
        return cursor.rowcount


def _json(value: Any) -> str:
    # NaN stays NaN, as json.dumps writes it, so PostgreSQL refuses that row as it did before (a null would be
    # stored, and fail to read back as a score)
    return to_json(value, inf_nan_mode="constants").decode()
