"""The store on both backends: idempotent upsert, filters, reads back what was written."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from nightclerk.shared.errors import ConfigError, StoreError, StoreUnavailable
from nightclerk.shared.results import LabelScore, ResultRow, Timings
from nightclerk.shared.store import ResultStore


def row(
    document_id: str, *, kind: str = "ehr_note", version: str = "v1", when: datetime | None = None
) -> ResultRow:
    return ResultRow(
        document_id=document_id,
        kind=kind,
        task="classify",
        pack_name="ehr-specialty",
        pack_version=version,
        precision="int8",
        labels=[LabelScore(label="Surgery", score=0.7), LabelScore(label="other", score=0.2)],
        timings=Timings(queue_ms=5.0, tokenize_ms=0.1, infer_ms=2.5),
        worker_id="w1",
        chunk_id="c1",
        created_at=when or datetime.now(UTC),
    )


def test_upsert_is_idempotent_per_document_task_and_pack_version(store: ResultStore) -> None:
    assert store.upsert([row("a"), row("b")]) == 2
    assert store.upsert([row("a"), row("b"), row("c")]) == 1
    assert store.upsert([row("a", version="v2")]) == 1  # a new pack version is a new result
    assert store.count() == 4
    assert store.existing(["a", "b", "c", "zzz"], "classify", "v1") == {"a", "b", "c"}


def test_rows_read_back_whole_and_filtered(store: ResultStore) -> None:
    old = datetime.now(UTC) - timedelta(days=2)
    store.upsert([row("n1", when=old), row("t1", kind="repair_ticket")])
    (ticket,) = store.rows(kind="repair_ticket")
    assert ticket.document_id == "t1"
    assert ticket.labels[0] == LabelScore(label="Surgery", score=0.7)
    assert ticket.timings.infer_ms == 2.5
    assert ticket.created_at.tzinfo is not None
    recent = list(store.rows(since=datetime.now(UTC) - timedelta(days=1)))
    assert [r.document_id for r in recent] == ["t1"]
    assert store.count(kind="ehr_note") == 1
    assert len(list(store.rows(limit=1))) == 1


def test_existing_handles_more_ids_than_one_in_clause(store: ResultStore) -> None:
    store.upsert([row(f"d{i}") for i in range(1200)])
    assert len(store.existing((f"d{i}" for i in range(0, 1300)), "classify", "v1")) == 1200


def test_unreachable_database_is_a_store_unavailable_error() -> None:
    store = ResultStore("postgresql://nobody@127.0.0.1:1/none")
    with pytest.raises(StoreUnavailable, match="unreachable"):
        store.create_schema()


def test_schema_is_postgres_only(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        ResultStore(f"sqlite:///{tmp_path / 'x.db'}", schema="s")
    with pytest.raises(ConfigError):
        ResultStore("mysql://h/db")


def test_the_longest_document_id_and_label_fit(store: ResultStore) -> None:
    from nightclerk.shared.documents import EhrNote

    longest = EhrNote(source="s" * 200, source_id="i" * 200, text="t").id
    wide = row(longest).model_copy(update={"labels": [LabelScore(label="L" * 300, score=1.0)]})
    assert store.upsert([wide]) == 1
    (back,) = store.rows()
    assert back.document_id == longest and back.top_label == "L" * 300


def test_a_document_twice_in_one_write_is_stored_once(store: ResultStore) -> None:
    assert store.upsert([row("a"), row("b"), row("a")]) == 2
    assert store.upsert([row("a"), row("c")]) == 1  # the next write on the same connection sees the first
    assert store.count() == 3


def test_postgres_refuses_a_score_that_is_not_a_number_and_stores_nothing_of_that_write(
    pg_result_store: ResultStore,
) -> None:
    bad = row("nan").model_copy(update={"labels": [LabelScore(label="x", score=float("nan"))]})
    with pytest.raises(StoreError, match="refused the statement"):
        pg_result_store.upsert([row("ok"), bad])
    assert pg_result_store.count() == 0
    assert pg_result_store.upsert([row("ok")]) == 1  # the connection is usable after the refusal
