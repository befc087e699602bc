"""Keeping PostgreSQL's planner statistics of ``results`` fresh while a worker fills it.

Why: before each chunk the worker asks which of its documents already have a result (a primary-key lookup
of 64 ids). A table PostgreSQL has never analyzed has no statistics, and the planner then reads that lookup
as "every row of this task" through the ``(kind, task)`` index: measured here, 14 ms at 13k rows and 167 ms
at 100k, growing with the table -- a 100k backlog drained at 227 docs/s first and 96 at the end. One
``ANALYZE`` brings it to 1.6 ms, flat to 100k rows. Autovacuum does this on its own, but it can be off (it
is on the development and CI databases here) or lag behind an overnight bulk load.

So the store counts the rows it wrote and, each time that count doubles (1,000, 2,000, 4,000 …: a handful of
times a night), analyzes the table if PostgreSQL says it was never analyzed or has changed by a tenth since
(autovacuum's own rule). ``ANALYZE`` samples at most 30,000 rows, and it waits for no lock longer than
``LOCK_TIMEOUT_MS``: a table another session is analyzing or vacuuming is skipped this time. A failure is
logged and never fails a chunk's write. SQLite plans the lookup on its primary key without statistics.
"""

from __future__ import annotations

import sqlalchemy as sa

from nightclerk.shared.logging import get_logger

log = get_logger(__name__)
FIRST_CHECK_ROWS = 1_000
STALE_FRACTION = 0.1  # autovacuum_analyze_scale_factor's default
LOCK_TIMEOUT_MS = 1_000


class TableStatistics:
    """Call :meth:`wrote` after each write; it analyzes the table when it is due."""

    def __init__(self, engine: sa.Engine, table: sa.Table) -> None:
        self.engine = engine
        self.table = table
        self.enabled = engine.dialect.name == "postgresql"
        self.written = 0
        self.next_check = FIRST_CHECK_ROWS
        self.analyzed = 0  # how many times this process analyzed the table

    def wrote(self, rows: int) -> None:
        self.written += rows
        if not self.enabled or self.written < self.next_check:
            return
        self.next_check = 2 * self.written
        try:
            if self._stale():
                self._analyze()
        except Exception as exc:  # statistics are an optimisation: the write itself has succeeded
            log.warning("statistics_refresh_failed", table=self.table.name, error=type(exc).__name__)

    def _qualified(self) -> str:
        preparer = self.engine.dialect.identifier_preparer
        return preparer.format_table(self.table)

    def _stale(self) -> bool:
        query = sa.text(
            "SELECT n_live_tup, n_mod_since_analyze, last_analyze, last_autoanalyze "
            "FROM pg_stat_user_tables WHERE relid = CAST(:name AS regclass)"
        )
        with self.engine.connect() as conn:
            row = conn.execute(query, {"name": self._qualified()}).first()
        if row is None:
            return True
        live, changed, manual, auto = row
        never = manual is None and auto is None
        return bool(never or changed > STALE_FRACTION * max(live, 1))

    def _analyze(self) -> None:
        with self.engine.begin() as conn:
            conn.execute(sa.text(f"SET LOCAL lock_timeout = {LOCK_TIMEOUT_MS}"))
            conn.execute(sa.text(f"ANALYZE {self._qualified()}"))
        self.analyzed += 1
        log.info("statistics_refreshed", table=self.table.name, rows_written=self.written)
