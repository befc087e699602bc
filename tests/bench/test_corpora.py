from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis

from bench.corpora import Source, load_corpus, repeat_mapping
from nightclerk.producers.push import push_files
from nightclerk.shared.settings import Settings

NOTES = Source("notes", "MTSamples notes", "ehr-specialty", "mtsamples", "note_id")
Decoder = Callable[[bytes | str], tuple[dict[str, Any], list[Any]]]
HEADER = ["note_id", "specialty", "sample_name", "description", "transcription", "keywords"]


def _notes(path: Path, rows: list[tuple[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        for note_id, text in rows:
            writer.writerow([note_id, "Surgery", "s", "d", text, "k"])
    return path


def test_slice_keeps_what_push_accepts_in_file_order(tmp_path: Path) -> None:
    source = _notes(
        tmp_path / "notes.csv",
        [
            ("1", "first,\nwith a line break"),
            ("2", "   "),
            ("1", "a repeated id"),
            ("3", "third"),
            ("4", "x"),
        ],
    )
    corpus = load_corpus(NOTES, source, 2, tmp_path / "work")
    assert corpus.texts == ["first,\nwith a line break", "third"]
    with corpus.path.open(newline="", encoding="utf-8") as handle:
        assert [row["note_id"] for row in csv.DictReader(handle)] == ["1", "3"]


def test_a_repetition_is_new_documents_with_the_same_texts(
    tmp_path: Path, redis_url: str, queue_name: str, decode_message: Decoder
) -> None:
    corpus = load_corpus(NOTES, _notes(tmp_path / "n.csv", [("1", "one"), ("2", "two")]), 10, tmp_path)
    settings = Settings(redis_url=redis_url, queue=queue_name)
    for tag in ("r0", "r1"):
        summary = push_files([corpus.path], repeat_mapping(corpus.mapping, tag), ["classify"], settings)
        assert (summary.accepted, summary.rejected) == (2, 0)
    raws = reversed(redis.Redis.from_url(redis_url).lrange(queue_name, 0, -1))  # LPUSH: newest first
    documents = [doc for raw in raws for doc in decode_message(raw)[1][0][0]["documents"]]
    assert [d["id"] for d in documents] == [
        "mtsamples-r0:1",
        "mtsamples-r0:2",
        "mtsamples-r1:1",
        "mtsamples-r1:2",
    ]
    assert [d["text"] for d in documents] == ["one", "two", "one", "two"]
