from __future__ import annotations

import random

import pytest

from nightclerk.producers.chunking import Chunker, chunk_json_bytes, document_json_bytes
from nightclerk.shared.documents import EhrNote, Literature, RepairTicket


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
