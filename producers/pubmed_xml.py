"""PubMed/MEDLINE XML files (plain or gzip) -> records, streamed with bounded memory.

The parsing is :mod:`nightclerk.shared.pubmed_xml`'s (lxml ``iterparse``, each article cleared once read).
One record per ``PubmedArticle``, numbered by its position in the file (1-based). An article without a PMID,
or with neither title nor abstract, is a reject with its reason. XML that breaks off or is not well-formed
ends the file there: the articles before it are kept, and the break is one reject naming its line and
column (never the text around it).
"""

from __future__ import annotations

import gzip
import io
import zlib
from collections.abc import Iterator
from typing import IO

from lxml import etree

from nightclerk.producers.readers import Item, RecordError
from nightclerk.shared.pubmed_xml import iter_citations

RECORD_COLUMNS: tuple[str, ...] = (
    "pmid",
    "title",
    "text",
    "journal",
    "year",
    "date",
    "publication_types",
    "mesh_terms",
)
GZIP_MAGIC = b"\x1f\x8b"


def file_items(stream: io.BufferedReader) -> Iterator[Item]:
    """The records of a PubMed XML stream (gzip is recognised by its first bytes)."""
    gzipped = stream.peek(2)[:2] == GZIP_MAGIC
    source: IO[bytes] | gzip.GzipFile = gzip.GzipFile(fileobj=stream) if gzipped else stream
    number = 0
    try:
        for number, citation in enumerate(iter_citations(source), start=1):
            if not citation.pmid:
                yield number, RecordError(f"article {number}: no PMID")
                continue
            if not citation.text:
                yield (
                    number,
                    RecordError(f"article {number} (PMID {citation.pmid}): no title and no abstract"),
                )
                continue
            yield (
                number,
                {
                    "pmid": citation.pmid,
                    "title": citation.title,
                    "text": citation.text,
                    "journal": citation.journal,
                    "year": citation.year,
                    "date": citation.date,
                    "publication_types": ";".join(citation.publication_types),
                    "mesh_terms": ";".join(citation.mesh_terms),
                },
            )
    except etree.XMLSyntaxError as exc:
        line, column = exc.position if exc.position else (0, 0)
        yield (
            number + 1,
            RecordError(
                f"XML not well-formed at line {line}, column {column}: "
                f"reading stopped after {number} articles"
            ),
        )
    except (OSError, EOFError, zlib.error) as exc:  # a truncated or corrupt gzip stream
        what = "zlib.error" if isinstance(exc, zlib.error) else type(exc).__name__
        yield number + 1, RecordError(f"compressed data unreadable ({what}) after {number} articles")
