"""The store keeps PostgreSQL's statistics of ``results`` fresh as it fills, so the worker's lookup of a
chunk's ids stays a primary-key lookup (``shared/store/statistics.py``)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from nightclerk.shared.results import ResultRow, Timings
from nightclerk.shared.store import ResultStore
from nightclerk.shared.store.statistics import FIRST_CHECK_ROWS


def _chunk(start: int, size: int = 64) -> list[ResultRow]:
    return [
        ResultRow(
            document_id=f"bench:{start + i}",
            kind="repair_ticket",
            task="classify",
            pack_name="ticket-system",
            pack_version="v1",
            precision="int8",
            labels=[],
            timings=Timings(queue_ms=1.0),
            worker_id="w1",
            chunk_id="c" * 32,
        )
        for i in range(size)
    ]


def _fill(store: ResultStore, rows: int, first: int = 0) -> None:
    """Rows ``first`` … ``first + rows - 1``, in chunks of 64 (``rows`` a multiple of 64)."""
    for start in range(first, first + rows, 64):
        store.upsert(_chunk(start))


BELOW_FIRST_CHECK = FIRST_CHECK_ROWS // 64 * 64  # 960: one chunk short of the first check


@pytest.fixture
def pg_store(pg_result_store: ResultStore) -> ResultStore:
    return pg_result_store


def _last_analyze(store: ResultStore) -> object:
    query = sa.text(
        "SELECT last_analyze FROM pg_stat_user_tables WHERE schemaname = :schema AND relname = 'results'"
    )
    deadline = time.monotonic() + 5  # the statistics views are flushed asynchronously
    while True:
        with store.engine.connect() as conn:
            found = conn.execute(query, {"schema": store.schema}).scalar()
        if found is not None or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def test_a_filling_table_is_analyzed_and_the_lookup_uses_the_primary_key(pg_store: ResultStore) -> None:
    _fill(pg_store, BELOW_FIRST_CHECK)
    assert pg_store.statistics.analyzed == 0  # nothing before the first check
    _fill(pg_store, 12_800, BELOW_FIRST_CHECK)
    assert pg_store.statistics.analyzed >= 1
    assert _last_analyze(pg_store) is not None

    c = pg_store.table.c
    ids = [f"bench:{i}" for i in range(5_000, 5_064)]
    lookup = sa.select(c.document_id).where(
        c.document_id.in_(ids), c.task == "classify", c.pack_version == "v1"
    )
    sql = str(lookup.compile(dialect=pg_store.engine.dialect, compile_kwargs={"literal_binds": True}))
    with pg_store.engine.connect() as conn:
        plan = "\n".join(line for (line,) in conn.execute(sa.text("EXPLAIN " + sql)))
    assert "results_pkey" in plan, plan
    assert pg_store.existing(ids, "classify", "v1") == set(ids)


def test_a_fresh_analysis_is_not_repeated(pg_store: ResultStore) -> None:
    _fill(pg_store, 1_024)
    assert pg_store.statistics.analyzed == 1
    assert _last_analyze(pg_store) is not None
    pg_store.statistics.next_check = 0  # ask again at once: nothing changed since, so no second ANALYZE
    pg_store.upsert(_chunk(1_024, 1))
    assert pg_store.statistics.analyzed == 1


def test_a_table_locked_by_another_session_is_skipped_and_the_write_stands(
    pg_store: ResultStore, postgres_url: str
) -> None:
    _fill(pg_store, BELOW_FIRST_CHECK)
    blocker = sa.create_engine(postgres_url)
    try:
        with blocker.begin() as conn:  # as a VACUUM or another ANALYZE would hold it
            conn.execute(sa.text(f'LOCK TABLE "{pg_store.schema}".results IN SHARE UPDATE EXCLUSIVE MODE'))
            started = time.monotonic()
            assert pg_store.upsert(_chunk(BELOW_FIRST_CHECK, 128)) == 128
            waited = time.monotonic() - started
    finally:
        blocker.dispose()
    assert pg_store.statistics.analyzed == 0
    assert waited < 30  # the lock timeout, not the blocker, ended the wait
    assert pg_store.count() == BELOW_FIRST_CHECK + 128


def test_sqlite_is_never_analyzed(tmp_path: Path) -> None:
    store = ResultStore(f"sqlite:///{tmp_path / 'results.db'}")
    store.create_schema()
    try:
        _fill(store, 2_048)
        assert store.statistics.analyzed == 0
        assert store.count() == 2_048
    finally:
        store.close()
