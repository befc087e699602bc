"""PubMed/MEDLINE XML -> citations, one at a time, in bounded memory (lxml ``iterparse``).

Each ``PubmedArticle`` is read, turned into a :class:`Citation` and then cleared together with the siblings
before it, so memory stays flat whatever the size of the file (the 2021 baseline file is ~250 MB of XML).
Entities are not resolved and huge text nodes are refused (lxml's defaults against XML bombs). Used by the
producers (intake of PubMed files) and the exporters (training data from the baseline file).
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

from lxml import etree


@dataclass(frozen=True)
class Citation:
    pmid: str
    title: str
    abstract: str  # structured sections as "LABEL: text" lines
    journal: str
    year: str
    date: str  # the journal issue's publication date as written: "2021 Mar 4", "2020 Winter", ...
    publication_types: tuple[str, ...]
    mesh_terms: tuple[str, ...]  # MeSH descriptor names, major topics marked with "*"

    @property
    def text(self) -> str:
        return (
            f"{self.title}\n\n{self.abstract}"
            if self.title and self.abstract
            else self.title or self.abstract
        )


def _text(element: etree._Element | None) -> str:
    return " ".join("".join(element.itertext()).split()) if element is not None else ""


def _abstract(article: etree._Element) -> str:
    parts = []
    for section in article.iterfind(".//Abstract/AbstractText"):
        label = section.get("Label")
        body = _text(section)
        if body:
            parts.append(f"{label}: {body}" if label else body)
    return "\n".join(parts)


def _date(article: etree._Element) -> tuple[str, str]:
    """(year, date as written) of the journal issue."""
    pub = article.find(".//Article/Journal/JournalIssue/PubDate")
    if pub is None:
        return "", ""
    medline = pub.findtext("MedlineDate", "").strip()
    year = pub.findtext("Year", "").strip() or medline[:4]
    parts = [pub.findtext(name, "").strip() for name in ("Year", "Season", "Month", "Day")]
    written = " ".join(part for part in parts if part) or medline
    return year, written


def _mesh(article: etree._Element) -> tuple[str, ...]:
    terms = []
    for heading in article.iterfind(".//MeshHeadingList/MeshHeading/DescriptorName"):
        name = _text(heading)
        if name:
            terms.append(f"{name}*" if heading.get("MajorTopicYN") == "Y" else name)
    return tuple(terms)


def iter_citations(stream: IO[bytes] | gzip.GzipFile) -> Iterator[Citation]:
    """Citations of a PubMed/MEDLINE XML stream; raises ``lxml.etree.XMLSyntaxError`` where it breaks."""
    for _, article in etree.iterparse(stream, tag="PubmedArticle", huge_tree=False, resolve_entities=False):
        year, date = _date(article)
        yield Citation(
            pmid=article.findtext(".//MedlineCitation/PMID", "").strip(),
            title=_text(article.find(".//Article/ArticleTitle")),
            abstract=_abstract(article),
            journal=_text(article.find(".//Article/Journal/Title")),
            year=year,
            date=date,
            publication_types=tuple(
                _text(p) for p in article.iterfind(".//PublicationTypeList/PublicationType")
            ),
            mesh_terms=_mesh(article),
        )
        article.clear(keep_tail=False)
        while article.getprevious() is not None:
            del article.getparent()[0]
