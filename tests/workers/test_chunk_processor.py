from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from nightclerk.exporters.tiny import POISON_WORD
from nightclerk.shared.change_feed import ChangeFeed, FeedConsumer
from nightclerk.shared.documents import EhrNote
from nightclerk.shared.errors import InferenceError, PackNotFound
from nightclerk.shared.messages import ChunkMessage
from nightclerk.shared.settings import Settings
from nightclerk.shared.store import ResultStore
from nightclerk.workers.chunk_processor import ChunkProcessor
from nightclerk.workers.classifier import ClassifierRuntime
from nightclerk.workers.device import Placement
from nightclerk.workers.pack_registry import PackRegistry

CPU = Placement("cpu", ["CPUExecutionProvider"])


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ResultStore]:
    result = ResultStore(f"sqlite:///{tmp_path / 'results.db'}")
    result.create_schema()
    yield result
    result.close()


@pytest.fixture
def processor(tiny_packs: Path, store: ResultStore) -> ChunkProcessor:
    registry = PackRegistry(Settings(packs_dir=tiny_packs), placement=CPU)
    return ChunkProcessor(registry, store, worker_id="w-test", top_k=2)


def chunk(n: int, start: int = 0) -> ChunkMessage:
    notes = [
        EhrNote(source="t", source_id=f"n{i}", text=f"note number {i} about the knee")
        for i in range(start, n)
    ]
    return ChunkMessage(tasks=["classify"], documents=notes)


def test_a_chunk_becomes_one_row_per_document(processor: ChunkProcessor, store: ResultStore) -> None:
    outcome = processor.process(chunk(10))
    assert (outcome.stored, outcome.skipped, outcome.failed) == (10, 0, [])
    rows = list(store.rows())
    assert sorted(r.document_id for r in rows) == sorted(f"t:n{i}" for i in range(10))
    row = rows[0]
    assert row.pack_name == "ehr-specialty" and row.worker_id == "w-test"
    assert {r.precision for r in rows} in ({"int8"}, {"fp32"})  # auto: the CPU variant measured fastest
    assert len(row.labels) == 2 and row.labels[0].score >= row.labels[1].score
    assert row.timings.infer_ms > 0 and row.timings.queue_ms >= 0


def test_stored_results_are_announced_and_a_redelivery_announces_them_again(
    tiny_packs: Path, store: ResultStore, change_feed: ChangeFeed
) -> None:
    registry = PackRegistry(Settings(packs_dir=tiny_packs), placement=CPU)
    processor = ChunkProcessor(registry, store, worker_id="w-test", feed=change_feed)
    first = chunk(4)
    processor.process(first)
    consumer = FeedConsumer(change_feed, "sink", "c1")
    entries = consumer.read(count=100)
    assert sorted(e.announcement.document_id for e in entries) == [f"t:n{i}" for i in range(4)]
    row = next(iter(store.rows()))
    told = next(e.announcement for e in entries if e.announcement.document_id == row.document_id)
    assert (told.task, told.pack_name, told.pack_version, told.kind, told.chunk_id) == (
        "classify",
        row.pack_name,
        row.pack_version,
        "ehr_note",
        first.chunk_id,
    )
    consumer.ack(entries)
    # the worker died after its commit and before its announcement: the redelivered chunk announces again
    outcome = processor.process(chunk(6))
    assert (outcome.stored, outcome.skipped) == (2, 4)
    again = consumer.read(count=100)
    assert sorted(e.announcement.document_id for e in again) == [f"t:n{i}" for i in range(6)]


def test_redelivery_skips_stored_documents(processor: ChunkProcessor, store: ResultStore) -> None:
    processor.process(chunk(6))
    outcome = processor.process(chunk(10))
    assert (outcome.stored, outcome.skipped) == (4, 6)
    assert store.count() == 10


def test_a_failing_document_does_not_sink_its_chunk(
    processor: ChunkProcessor, store: ResultStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = ClassifierRuntime.classify

    def poisoned(self: ClassifierRuntime, texts: list[str]):  # type: ignore[no-untyped-def]
        if any("number 3 " in text for text in texts):
            raise InferenceError("boom")
        return real(self, texts)

    monkeypatch.setattr(ClassifierRuntime, "classify", poisoned)
    outcome = processor.process(chunk(8))
    assert outcome.failed == ["t:n3"]
    assert outcome.stored == 7
    assert "t:n3" not in {r.document_id for r in store.rows()}


def test_a_poison_document_is_dead_lettered_with_its_reason_and_the_rest_stored(
    fragile_packs: Path, store: ResultStore
) -> None:
    registry = PackRegistry(Settings(packs_dir=fragile_packs), placement=CPU)
    processor = ChunkProcessor(registry, store, "w-test", document_attempts=3, retry_backoff_s=0.01)
    documents = chunk(12).documents
    poison = {documents[4].id, documents[9].id}
    documents = [
        EhrNote(source="t", source_id=d.source_id, text=f"{d.text} {POISON_WORD}") if d.id in poison else d
        for d in documents
    ]
    message = ChunkMessage(tasks=["classify"], documents=documents)
    outcome = processor.process(message)  # onnxruntime fails every batch holding a poison note
    assert sorted(outcome.failed) == sorted(poison) and outcome.stored == 10
    assert {r.document_id for r in store.rows()} == {d.id for d in documents} - poison
    letters = processor.dead_letters.letters()
    assert {d.document_id for d in letters} == poison
    assert all(d.attempts == 3 and d.chunk_id == message.chunk_id for d in letters)
    assert all(d.reason.startswith("InferenceError: pack ehr-specialty: inference failed") for d in letters)
    assert all(POISON_WORD not in d.reason and "knee" not in d.reason for d in letters)
    # delivered again (the worker died before acknowledging): stored ones skip, the poison fails again
    again = processor.process(message)
    assert (again.stored, again.skipped, sorted(again.failed)) == (0, 10, sorted(poison))
    assert {d.attempts for d in processor.dead_letters.letters()} == {6}


def test_an_unplaceable_error_dead_letters_every_unstored_document(
    processor: ChunkProcessor, store: ResultStore
) -> None:
    processor.process(chunk(3))
    message = chunk(6)
    assert processor.dead_letter_chunk(message, "worker error: TypeError at x.py:1") == 3
    letters = processor.dead_letters.letters()
    assert sorted(d.document_id for d in letters) == ["t:n3", "t:n4", "t:n5"]
    assert {(d.pack_name, d.reason) for d in letters} == {
        ("ehr-specialty", "worker error: TypeError at x.py:1")
    }


def test_a_kind_without_a_pack_is_pack_not_found(tiny_packs: Path, store: ResultStore) -> None:
    registry = PackRegistry(
        Settings(packs_dir=tiny_packs, classify_packs={"ehr_note": "absent"}), placement=CPU
    )
    with pytest.raises(PackNotFound):
        ChunkProcessor(registry, store, "w").process(chunk(2))
    assert registry.preload() == []


def test_classify_and_summarize_give_one_row_each(
    tiny_packs: Path, tmp_path: Path, store: ResultStore
) -> None:
    import shutil

    from nightclerk.exporters.generation.tiny_pack import build_tiny_summarizer

    packs = tmp_path / "packs"
    shutil.copytree(tiny_packs, packs)
    build_tiny_summarizer(packs, "summarizer")
    registry = PackRegistry(Settings(packs_dir=packs), placement=CPU)
    assert "summarize:ehr_note" in registry.preload() and "classify:ehr_note" in registry.preload()
    processor = ChunkProcessor(registry, store, worker_id="w-test")
    message = ChunkMessage(tasks=["classify", "summarize"], documents=chunk(5).documents)
    outcome = processor.process(message)
    assert (outcome.stored, outcome.skipped, outcome.failed) == (10, 0, [])
    summaries = [r for r in store.rows() if r.task == "summarize"]
    assert len(summaries) == 5 and all(r.summary and not r.labels for r in summaries)
    assert {r.pack_name for r in summaries} == {"summarizer"} and all(
        r.timings.infer_ms > 0 for r in summaries
    )
    again = processor.process(message)  # redelivered: both tasks skip every document
    assert (again.stored, again.skipped) == (0, 10) and store.count() == 10


@pytest.fixture
def pg_store(pg_result_store: ResultStore) -> ResultStore:
    return pg_result_store


def test_rows_the_store_refuses_are_dead_lettered_alone(tiny_packs: Path, pg_store: ResultStore) -> None:
    with pg_store.transaction() as conn:  # a rule of the database's own: this id may not be stored
        rule = "ADD CONSTRAINT not_n5 CHECK (document_id <> 't:n5')"
        conn.execute(sa.text(f'ALTER TABLE "{pg_store.schema}".results {rule}'))
    processor = ChunkProcessor(PackRegistry(Settings(packs_dir=tiny_packs), placement=CPU), pg_store, "w")
    outcome = processor.process(chunk(12))
    assert (outcome.stored, outcome.failed) == (11, ["t:n5"])
    (letter,) = processor.dead_letters.letters()
    assert letter.document_id == "t:n5" and letter.reason == (
        "the store refused its result: StoreError: result store "
        f"{pg_store.describe()} refused the statement: CheckViolation"
    )


def test_a_summary_quoting_a_nul_byte_is_stored_without_it(
    tiny_packs: Path, tmp_path: Path, pg_store: ResultStore
) -> None:
    import shutil

    from nightclerk.exporters.tiny import build_tiny_extractive

    packs = tmp_path / "packs"
    shutil.copytree(tiny_packs, packs)
    build_tiny_extractive(packs, "summarizer", max_sentences=1)
    processor = ChunkProcessor(PackRegistry(Settings(packs_dir=packs), placement=CPU), pg_store, "w")
    note = EhrNote(source="t", source_id="nul", text="The knee\x00 is swollen. No\x00 fever today.")
    outcome = processor.process(ChunkMessage(tasks=["summarize"], documents=[note]))
    assert (outcome.stored, outcome.failed) == (1, [])
    (row,) = pg_store.rows()
    assert row.summary and "\x00" not in row.summary  # PostgreSQL text cannot hold NUL: it is dropped
