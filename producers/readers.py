"""Streaming readers: CSV, JSONL and FHIR files -> ``(line number, record | RecordError)``.

Bytes are decoded as UTF-8 with ``errors="surrogateescape"``: an undecodable byte becomes a lone surrogate,
which document validation rejects as "not valid UTF-8" for that record alone, so one bad record does not
sink the file. A JSONL line that does not parse is a :class:`RecordError` for that line; reading goes on.

FHIR (``--format fhir``, never guessed from the extension: ``.ndjson`` stays JSONL), HL7 v2 (``.hl7``,
``--format hl7``) and PubMed XML (``.xml``, ``.xml.gz``, ``--format pubmed``) are read by modules of their
own (``_FORMAT_MODULES``), imported only when such a file is read, so that other pushes do not load their
libraries; their records have fixed columns. A ``.json`` file is one JSON document: an array of records, or
an object holding one (Jira's ``issues``, ServiceNow's ``result``), parsed whole.
"""

from __future__ import annotations

import csv
import importlib
import io
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from nightclerk.shared.errors import InputError

Format = Literal["csv", "jsonl", "json", "fhir", "hl7", "pubmed"]
FORMATS: tuple[Format, ...] = ("csv", "jsonl", "json", "fhir", "hl7", "pubmed")
# a JSON document's records: a top-level array, or the array under one of these keys (Jira's search
# response holds "issues", ServiceNow's Table API "result"), or the one record under "issue" (a Jira webhook)
JSON_RECORD_KEYS = ("issues", "result", "records", "data")
JSON_SINGLE_KEYS = ("issue",)
SUFFIXES: dict[str, Format] = {
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".json": "json",
    ".ndjson": "jsonl",
    ".hl7": "hl7",
    ".xml": "pubmed",
    ".xml.gz": "pubmed",
}
# formats read by a module of their own, imported only when such a file is read; each has RECORD_COLUMNS
_FORMAT_MODULES: dict[str, str] = {
    "fhir": "nightclerk.producers.fhir",
    "hl7": "nightclerk.producers.hl7v2",
    "pubmed": "nightclerk.producers.pubmed_xml",
}
ENCODING = "utf-8-sig"  # a leading byte-order mark is dropped, not glued to the first column name
ERRORS = "surrogateescape"
SAMPLE_RECORDS = 100  # JSONL has no header: the columns are the keys seen in the first records
# json.loads raises a plain ValueError (not JSONDecodeError) for an integer over sys.get_int_max_str_digits()
NUMBER_TOO_LONG = "a number too long to read"


def _raise_field_limit() -> None:
    # A 50 MB field must reach validation (and be rejected there by size), not abort the whole file.
    limit = sys.maxsize
    while True:
        try:
            csv.field_size_limit(limit)
            return
        except OverflowError:
            limit //= 2


_raise_field_limit()


@dataclass(frozen=True)
class RecordError:
    """A record that could not be read; ``reason`` never quotes the record's content."""

    reason: str


Record = dict[str, Any]
Item = tuple[int, Record | RecordError]


@dataclass(frozen=True)
class FileShape:
    """What a file looks like before any record of it is used."""

    columns: list[str]
    has_records: bool
    header: bool  # True: ``columns`` is a CSV header; False: JSONL keys seen in the first records, or FHIR's


def detect_format(path: Path, explicit: str | None = None) -> Format:
    if explicit is not None:
        for fmt in FORMATS:
            if explicit == fmt:
                return fmt
        raise InputError(f"unknown format {explicit!r}; formats: {', '.join(FORMATS)}")
    name = path.name.lower()
    guessed = next((fmt for suffix, fmt in SUFFIXES.items() if name.endswith(suffix)), None)
    if guessed is None:
        raise InputError(
            f"{path}: cannot tell the format from the extension; use --format {', '.join(FORMATS)}"
        )
    return guessed


def inspect_file(path: Path, fmt: Format) -> FileShape:
    """Read just enough of the file to know its columns and whether it holds any record."""
    with RecordReader(path, fmt) as reader:
        if fmt in _FORMAT_MODULES:
            columns: list[str] = list(importlib.import_module(_FORMAT_MODULES[fmt]).RECORD_COLUMNS)
            has_records = next(iter(reader), None) is not None
            return FileShape(columns=columns, has_records=has_records, header=False)
        if fmt == "csv":
            header = reader.header or []
            has_records = next(iter(reader), None) is not None
            return FileShape(columns=header, has_records=bool(header) and has_records, header=True)
        keys: dict[str, None] = {}
        seen = 0
        for _, record in reader:
            seen += 1
            if isinstance(record, dict):
                keys.update(dict.fromkeys(record))
            if seen >= SAMPLE_RECORDS:
                break
        return FileShape(columns=list(keys), has_records=seen > 0, header=False)


def records_in(value: Any) -> list[Record | RecordError] | None:
    """The records a parsed JSON document holds (see ``JSON_RECORD_KEYS``); None when it holds none."""
    if isinstance(value, dict):
        many = next((value[k] for k in JSON_RECORD_KEYS if isinstance(value.get(k), list)), None)
        one = next((value[k] for k in JSON_SINGLE_KEYS if isinstance(value.get(k), dict)), None)
        value = many if many is not None else [one if one is not None else value]
    if not isinstance(value, list):
        return None
    return [item if isinstance(item, dict) else RecordError("item is not a JSON object") for item in value]


class RecordReader:
    """Iterate the records of one file; ``bytes_read`` tells how far it got (for a progress bar)."""

    def __init__(self, path: Path, fmt: Format) -> None:
        self.path = path
        self.fmt = fmt
        try:
            self._raw = io.FileIO(path, "r")
        except OSError as exc:
            raise InputError(f"cannot open {path}: {exc.strerror or type(exc).__name__}") from None
        self._buffered = io.BufferedReader(self._raw, buffer_size=1 << 20)
        self.size = Path(path).stat().st_size
        self.header: list[str] | None = None
        self._text: io.TextIOWrapper | None = None
        self._csv: Any = None
        if fmt == "csv":
            self._text = io.TextIOWrapper(self._buffered, encoding=ENCODING, errors=ERRORS, newline="")
            # strict: a stray quote or a file cut inside a quoted field rejects that record, not a guess
            self._csv = csv.reader(self._text, strict=True)
            self.header = self._read_header()

    @property
    def bytes_read(self) -> int:
        return self._raw.tell() if not self._raw.closed else self.size

    def __enter__(self) -> RecordReader:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        (self._text or self._buffered).close()

    def __iter__(self) -> Iterator[Item]:
        if self.fmt == "fhir":
            return self._fhir_records()
        if self.fmt == "json":
            return self._json_document_records()
        if self.fmt in _FORMAT_MODULES:
            items: Iterator[Item] = importlib.import_module(_FORMAT_MODULES[self.fmt]).file_items(
                self._buffered
            )
            return items
        return self._csv_records() if self.fmt == "csv" else self._jsonl_records()

    def _json_document_records(self) -> Iterator[Item]:
        """A whole JSON document (an export file), parsed at once; each record numbered from 1."""
        raw = self._buffered.read()
        try:
            value = json.loads(raw.decode(ENCODING, errors=ERRORS))
        except json.JSONDecodeError as exc:
            yield 1, RecordError(f"invalid JSON: {exc.msg}: line {exc.lineno} column {exc.colno}")
            return
        except RecursionError:
            yield 1, RecordError("invalid JSON: nested too deeply")
            return
        except ValueError:  # an integer of more than 4,300 digits: valid JSON, but Python refuses to read it
            yield 1, RecordError(f"invalid JSON: {NUMBER_TOO_LONG}")
            return
        records = records_in(value)
        if records is None:
            yield 1, RecordError("the document is neither an object nor an array of objects")
            return
        yield from enumerate(records, start=1)

    def _fhir_records(self) -> Iterator[Item]:
        from nightclerk.producers import fhir

        if self.path.suffix.lower() == ".json":  # one resource or Bundle, parsed whole
            return fhir.document_items(self._buffered.read())
        return fhir.ndjson_items(self._buffered)  # a bulk-data export, line by line

    def _read_header(self) -> list[str] | None:
        try:
            for row in self._csv:
                if any(cell.strip() for cell in row):
                    return [cell.strip() for cell in row]
        except csv.Error as exc:
            self.close()
            raise InputError(f"{self.path}: the header line is not valid CSV ({exc})") from None
        return None

    def _csv_records(self) -> Iterator[Item]:
        if self.header is None:
            return
        header = self.header
        while True:
            start = self._csv.line_num + 1
            try:
                row = next(self._csv)
            except StopIteration:
                return
            except csv.Error as exc:
                yield start, RecordError(f"unreadable CSV record: {exc}")
                continue
            if not row or (len(row) == 1 and not row[0].strip()):
                continue  # blank line
            if len(row) != len(header):
                yield start, RecordError(f"record has {len(row)} fields, the header has {len(header)}")
                continue
            yield start, dict(zip(header, row, strict=True))

    def _jsonl_records(self) -> Iterator[Item]:
        for number, raw in enumerate(self._buffered, start=1):
            line = raw.decode(ENCODING if number == 1 else "utf-8", errors=ERRORS).rstrip("\r\n")
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as exc:
                # exc.msg and the column, never exc.doc: the line holds document text
                yield number, RecordError(f"invalid JSON: {exc.msg}: column {exc.colno}")
                continue
            except RecursionError:
                yield number, RecordError("invalid JSON: nested too deeply")
                continue
            except ValueError:  # an integer of more than 4,300 digits
                yield number, RecordError(f"invalid JSON: {NUMBER_TOO_LONG}")
                continue
            if not isinstance(value, dict):
                yield number, RecordError("line is not a JSON object")
                continue
            yield number, value
