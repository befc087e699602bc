"""The real documents every system is measured on: MTSamples notes, PubMed abstracts, nestor work orders.

Each corpus is the first ``docs`` usable records of its file (non-empty text, first of a repeated id, as
push would accept them), written to a CSV slice that push reads, and the same texts in memory for the
in-process systems. A repetition pushes the slice again under another source name
(:func:`repeat_mapping`), so its document ids are new and the worker does the work again.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from nightclerk.exporters.datasets import mtsamples_path, nestor_path
from nightclerk.producers.mapping import FieldMapping, load_preset

TICKET_SCALE = 5
# A repetition of (2) pushes the work-order slice this many times: 1,500 work orders are two chunks (1,024 and
# 476), too few for two workers to share evenly; 16 passes are 32 chunks, about 30 s of work.
TICKET_E2E_PASSES = 16
# 300 notes are 5 chunks: two workers share them 3 : 2 and the last one runs alone on its core, a tail the
# bare limit never has and a job of millions of notes barely has. 4 passes are 20 chunks (about 20 s).
LONG_E2E_PASSES = 4


@dataclass(frozen=True)
class Corpus:
    name: str  # notes, abstracts, tickets
    title: str
    pack: str  # the classification pack its documents go to
    preset: str  # the push mapping preset
    path: Path  # the slice push reads
    texts: list[str]
    e2e_passes: int = 1  # how many times (2) pushes the slice per repetition, each under its own source name

    @property
    def mapping(self) -> FieldMapping:
        return load_preset(self.preset)


@dataclass(frozen=True)
class Source:
    name: str
    title: str
    pack: str
    preset: str
    id_column: str | None  # None: ids come from a template and do not repeat
    # documents taken per ``--docs``: 300 work orders classify in half a second, too short a run to tell a
    # pipeline's throughput from its start-up
    scale: int = 1
    e2e_passes: int = 1


def sources(data_dir: Path) -> list[tuple[Source, Path | None]]:
    return [
        (
            Source(
                "notes",
                "MTSamples notes",
                "ehr-specialty",
                "mtsamples",
                "note_id",
                e2e_passes=LONG_E2E_PASSES,
            ),
            mtsamples_path(),
        ),
        (
            Source(
                "abstracts", "PubMed abstracts", "lit-pubtype", "pubmed", "pmid", e2e_passes=LONG_E2E_PASSES
            ),
            _existing(data_dir / "pubmed" / "pubtype.csv"),
        ),
        (
            Source(
                "tickets",
                "nestor work orders",
                "ticket-system",
                "nestor",
                None,
                scale=TICKET_SCALE,
                e2e_passes=TICKET_E2E_PASSES,
            ),
            _existing(nestor_path(data_dir / "nestor")),
        ),
    ]


def _existing(path: Path) -> Path | None:
    return path if path.is_file() else None


def load_corpus(source: Source, path: Path, docs: int, work: Path) -> Corpus:
    mapping = load_preset(source.preset)
    seen: set[str] = set()
    rows: list[dict[str, str]] = []
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        header = list(reader.fieldnames or [])
        for row in reader:
            if not (row.get(mapping.text_field) or "").strip():
                continue
            if source.id_column is not None:
                if row[source.id_column] in seen:
                    continue
                seen.add(row[source.id_column])
            rows.append(row)
            if len(rows) == docs:
                break
    target = work / f"{source.name}.csv"
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=header)
        writer.writeheader()
        writer.writerows(rows)
    texts = [row[mapping.text_field] for row in rows]
    return Corpus(source.name, source.title, source.pack, source.preset, target, texts, source.e2e_passes)


def load_corpora(data_dir: Path, docs: int, work: Path, names: list[str]) -> tuple[list[Corpus], list[str]]:
    """The corpora asked for that are here, and a line for each one that is not."""
    found, missing = [], []
    for source, path in sources(data_dir):
        if source.name not in names:
            continue
        if path is None:
            missing.append(f"{source.title}: data missing (make data)")
            continue
        found.append(load_corpus(source, path, docs * source.scale, work))
    return found, missing


def repeat_mapping(mapping: FieldMapping, tag: str) -> FieldMapping:
    """The same mapping under another source name: the same texts get new document ids."""
    return mapping.model_copy(update={"source": f"{mapping.source}-{tag}"})
