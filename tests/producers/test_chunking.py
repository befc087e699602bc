from __future__ import annotations

import random

import pytest

from nightclerk.producers.chunking import (
    FULL_WORDS,
    Chunker,
    chunk_json_bytes,
    document_json_bytes,
    document_work,
)
from nightclerk.shared.documents import EhrNote, Literature, RepairTicket
from nightclerk.shared.settings import Settings


def _notes(count: int, seed: int = 0) -> list[EhrNote]:
    rng = random.Random(seed)
    return [
        EhrNote(source="t", source_id=f"n{i}", text="w\u00e9rd " * rng.randint(1, 400), metadata={"i": "v"})
        for i in range(count)
    ]


def _all(chunker: Chunker, docs: list[EhrNote | RepairTicket | Literature]) -> list[list[str]]:
    chunks = []
    for doc in docs:
        chunks += chunker.add(doc)
    chunks += chunker.flush()
    for chunk in chunks:
        assert len(chunk.documents) <= chunker.max_docs
        assert chunk_json_bytes(chunk) <= chunker.max_bytes
        assert len({doc.kind for doc in chunk.documents}) == 1
        assert chunk.tasks == ["classify"]
    return [[doc.id for doc in chunk.documents] for chunk in chunks]


def test_chunks_are_bounded_by_count() -> None:
    docs = _notes(10)
    ids = _all(Chunker(["classify"], max_docs=4, max_bytes=1_000_000), list(docs))
    assert [len(chunk) for chunk in ids] == [4, 4, 2]
    assert [i for chunk in ids for i in chunk] == [doc.id for doc in docs]


def test_chunks_are_bounded_by_json_bytes_as_sent() -> None:
    docs = _notes(200, seed=3)
    chunker = Chunker(["classify"], max_docs=64, max_bytes=20_000)
    ids = _all(chunker, list(docs))
    assert [i for chunk in ids for i in chunk] == [doc.id for doc in docs]
    assert len(ids) > 200 * 1200 // 20_000  # the byte bound, not the count, cut these


def test_the_size_estimate_is_exact() -> None:
    docs = _notes(7, seed=5)
    chunker = Chunker(["classify"], max_docs=7, max_bytes=1_000_000)
    chunks = [c for doc in docs for c in chunker.add(doc, document_json_bytes(doc))]
    assert len(chunks) == 1
    predicted = sum(document_json_bytes(doc) for doc in docs) + 2 * (len(docs) - 1)
    envelope = chunker.max_bytes - chunker.max_document_bytes
    assert 0 <= envelope - (chunk_json_bytes(chunks[0]) - predicted) <= 16 + 7  # slack + timestamp


def test_kinds_never_share_a_chunk() -> None:
    docs: list[EhrNote | RepairTicket | Literature] = []
    for i in range(9):
        docs.append(EhrNote(source="t", source_id=f"n{i}", text="note"))
        docs.append(RepairTicket(source="t", source_id=f"r{i}", text="ticket"))
    docs.append(Literature(source="t", source_id="p", text="paper", title="T"))
    ids = _all(Chunker(["classify"], max_docs=5, max_bytes=1_000_000), docs)
    assert sorted(len(chunk) for chunk in ids) == [1, 4, 4, 5, 5]


def test_a_document_bigger_than_a_chunk_is_refused() -> None:
    chunker = Chunker(["classify"], max_docs=5, max_bytes=10_000)
    with pytest.raises(ValueError, match="JSON bytes"):
        chunker.add(EhrNote(source="t", text="x" * 20_000))
    assert chunker.flush() == []


def _tickets(count: int, words: int) -> list[EhrNote | RepairTicket | Literature]:
    return [
        RepairTicket(source="t", source_id=f"r{i}", text=" ".join(["pump"] * words)) for i in range(count)
    ]


def _sizes(chunker: Chunker, docs: list[EhrNote | RepairTicket | Literature]) -> list[int]:
    chunks = [chunk for doc in docs for chunk in chunker.add(doc)] + chunker.flush()
    assert [d.id for chunk in chunks for d in chunk.documents] == [d.id for d in docs]
    for chunk in chunks:
        assert chunk_json_bytes(chunk) <= chunker.max_bytes
    return [len(chunk.documents) for chunk in chunks]


def test_short_documents_share_a_chunk_worth_max_docs_full_ones() -> None:
    chunker = Chunker(["classify"], max_docs=64, max_bytes=1_000_000, max_short_docs=1024)
    # 10 words = 10/128 of a full document: 64 full ones' worth is 819.2 of them
    assert _sizes(chunker, _tickets(2000, 10)) == [820, 820, 360]
    assert document_work(_tickets(1, 10)[0]) == pytest.approx(10 / FULL_WORDS)
    assert document_work(_tickets(1, 5000)[0]) == 1.0


def test_full_length_documents_keep_max_docs_per_chunk() -> None:
    chunker = Chunker(["classify"], max_docs=64, max_bytes=10_000_000, max_short_docs=1024)
    assert _sizes(chunker, _tickets(150, FULL_WORDS)) == [64, 64, 22]
    assert _sizes(chunker, _tickets(150, 3 * FULL_WORDS)) == [64, 64, 22]


def test_growth_stops_at_max_short_docs_and_at_the_byte_bound() -> None:
    chunker = Chunker(["classify"], max_docs=64, max_bytes=1_000_000, max_short_docs=300)
    assert _sizes(chunker, _tickets(700, 1)) == [300, 300, 100]
    small = Chunker(["classify"], max_docs=64, max_bytes=20_000, max_short_docs=1024)
    sizes = _sizes(small, _tickets(700, 10))
    assert max(sizes) < 820 and sum(sizes) == 700  # the byte bound cut these


def test_chunks_that_summarize_or_set_no_short_limit_keep_max_docs() -> None:
    summarizing = Chunker(["classify", "summarize"], max_docs=64, max_bytes=1_000_000, max_short_docs=1024)
    assert not summarizing.grows
    assert _sizes(summarizing, _tickets(150, 10)) == [64, 64, 22]
    plain = Chunker(["classify"], max_docs=64, max_bytes=1_000_000)
    assert not plain.grows
    assert _sizes(plain, _tickets(150, 10)) == [64, 64, 22]


def test_the_settings_make_classify_chunks_of_short_documents_grow() -> None:
    settings = Settings(chunk_docs=32, chunk_max_docs=500)
    chunker = Chunker.from_settings(["classify"], settings)
    assert (chunker.max_docs, chunker.most_docs, chunker.max_bytes) == (32, 500, settings.chunk_max_bytes)
    assert _sizes(chunker, _tickets(600, 4)) == [500, 100]
