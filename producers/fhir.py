"""FHIR R4 documents -> records: the text of DocumentReference, DiagnosticReport and Composition resources.

Why it is written this way:

* Each resource is validated on its own with ``fhir.resources`` (its R4B models, which match R4 for these
  resources), never a whole Bundle at once: one bad entry is one reject and the other entries still go. A
  Bundle is checked without its entries; entries of other types (Patient, Encounter, ...) carry no document
  text and are skipped unvalidated.
* Attachment data that is not base64 is taken out before validation and reported for that attachment
  alone, since ``fhir.resources`` would otherwise refuse the whole resource.
* Reasons name resource types, ids that look like FHIR ids, indexes, content types and pydantic error
  locations and types -- never an error message or an input value: either could quote patient data.
* Record values come from the JSON as sent (dates as written, not re-formatted), once the model has vouched
  for their shape.
* NDJSON (a bulk-data export) is read line by line, so memory is bounded by the longest line; a ``.json``
  file is one JSON document (a resource or a Bundle) and is parsed whole.
* An item's number points into the file: the NDJSON line, or the Bundle entry (1-based) of a ``.json`` file.
* A resource without an id gets ``sha256-<hash of its text>`` as id: the content hash the pipeline uses when
  a source has no id, in a form the document id accepts, so a mapping with ``id_field = "id"`` still works.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import copy
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import lxml.html
from fhir.resources.R4B import get_fhir_model_class
from lxml import etree
from pydantic import ValidationError

from nightclerk.producers.readers import NUMBER_TOO_LONG, Item, Record, RecordError
from nightclerk.shared.documents import content_id

RECORD_COLUMNS: tuple[str, ...] = (
    "id",
    "text",
    "resource_type",
    "content_type",
    "patient",
    "encounter",
    "date",
    "title",
)
NOTE_TYPES: tuple[str, ...] = ("DocumentReference", "DiagnosticReport", "Composition")
BUNDLE_TYPES: tuple[str, ...] = ("collection", "transaction", "searchset", "document")
TEXT_TYPES = frozenset({"text/plain", "text/html"})
MAX_ERRORS_SHOWN = 5

_FHIR_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
_TYPE_NAME = re.compile(r"^[A-Za-z]{1,64}$")
_CODE = re.compile(r"^[a-z0-9\-]{1,40}$")
_MEDIA_TYPE = re.compile(r"^[a-z0-9!#$&^_.+\-]{1,60}/[a-z0-9!#$&^_.+\-]{1,60}$")
_CHARSET = re.compile(r"^[A-Za-z0-9_.:\-]{1,40}$")
_LOC_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_WHITESPACE = re.compile(r"\s+")

_BLOCK_TAGS = frozenset(
    {
        *("address", "article", "aside", "blockquote", "body", "br", "caption", "dd", "div", "dl", "dt"),
        *("fieldset", "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6"),
        *("header", "hr", "li", "main", "nav", "ol", "p", "pre", "section", "table", "tbody", "tfoot"),
        *("thead", "tr", "ul"),
    }
)
_CELL_TAGS = frozenset({"td", "th"})
_SKIPPED_TAGS = frozenset({"head", "script", "style", "template"})
_HTML_PARSER = lxml.html.HTMLParser(encoding="utf-8", remove_comments=True, remove_pis=True, no_network=True)


class _Unusable(Exception):
    """One attachment or resource cannot give a record; ``reason`` holds no input value."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# --- reading files -------------------------------------------------------------------------------------


def ndjson_items(lines: Iterable[bytes]) -> Iterator[Item]:
    """A bulk-data export: one resource (or Bundle) per line; every item carries its line number."""
    for number, raw in enumerate(lines, start=1):
        try:
            value = _parse_json(raw.rstrip(b"\r\n"), first=number == 1)
        except _Unusable as exc:
            yield number, RecordError(exc.reason)
            continue
        if value is None:
            continue  # blank line
        for _, record in resource_items(value):
            yield number, record


def document_items(data: bytes) -> Iterator[Item]:
    """A ``.json`` file: one resource, or a Bundle whose items carry their entry numbers."""
    try:
        value = _parse_json(data, first=True)
    except _Unusable as exc:
        yield 1, RecordError(exc.reason)
        return
    if value is None:
        return  # an empty file: the file check says so
    yield from resource_items(value)


def _parse_json(data: bytes, *, first: bool) -> Any:
    try:
        text = data.decode("utf-8-sig" if first else "utf-8")
    except UnicodeDecodeError as exc:
        raise _Unusable(f"not valid UTF-8 at byte {exc.start}") from None
    if not text.strip():
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        # exc.msg and the place, never exc.doc: the text holds patient data
        place = f"line {exc.lineno} column {exc.colno}" if exc.lineno > 1 else f"column {exc.colno}"
        raise _Unusable(f"invalid JSON: {exc.msg}: {place}") from None
    except RecursionError:
        raise _Unusable("invalid JSON: nested too deeply") from None
    except ValueError:  # an integer of more than 4,300 digits: valid JSON, but Python refuses to read it
        raise _Unusable(f"invalid JSON: {NUMBER_TOO_LONG}") from None
    if not isinstance(value, dict):
        raise _Unusable("not a JSON object")
    return value


# --- resources and bundles -----------------------------------------------------------------------------


def resource_items(value: dict[str, Any]) -> Iterator[Item]:
    """The records of one top-level resource: a Bundle's numbered by entry, any other's numbered 1."""
    if value.get("resourceType") == "Bundle":
        yield from _bundle_items(value)
        return
    for record in note_records(value):
        yield 1, record


def _bundle_items(bundle: dict[str, Any]) -> Iterator[Item]:
    label = _label(bundle)
    bundle_type = bundle.get("type")
    if bundle_type not in BUNDLE_TYPES:
        shown = bundle_type if isinstance(bundle_type, str) and _CODE.match(bundle_type) else "(not shown)"
        reason = f"{label}: bundle type {shown} is not read; types read: {', '.join(BUNDLE_TYPES)}"
        yield 1, RecordError(reason)
        return
    problem = _validation_problem("Bundle", {key: v for key, v in bundle.items() if key != "entry"})
    entries = bundle.get("entry", [])
    if problem is None and not isinstance(entries, list):
        problem = "entry (list_type)"
    if problem is not None:
        yield 1, RecordError(f"{label}: not a valid FHIR R4 Bundle: {problem}")
        return
    for number, entry in enumerate(entries, start=1):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(entry, dict) or (resource is not None and not isinstance(resource, dict)):
            yield number, RecordError(f"{label} entry {number}: not a JSON object")
        elif resource is not None and resource.get("resourceType") in NOTE_TYPES:
            for record in note_records(resource):
                yield number, record
        # any other resource, or an entry without one (a transaction's DELETE), holds no document text


def note_records(resource: dict[str, Any]) -> list[Record | RecordError]:
    """The records of one DocumentReference, DiagnosticReport or Composition, or why there are none."""
    label = _label(resource)
    resource_type = resource.get("resourceType")
    if not isinstance(resource_type, str):
        return [RecordError("not a FHIR resource: resourceType missing")]
    if resource_type not in NOTE_TYPES:
        read = ", ".join((*NOTE_TYPES, "Bundle"))
        return [RecordError(f"{label}: resource type {_type_name(resource)} is not read; types read: {read}")]
    cleaned, bad_base64 = _without_bad_base64(resource)
    problem = _validation_problem(resource_type, cleaned)
    if problem is not None:
        return [RecordError(f"{label}: not a valid FHIR R4 {resource_type}: {problem}")]
    if resource_type == "Composition":
        return [_composition_record(cleaned)]
    return _attachment_records(cleaned, bad_base64)


def _validation_problem(resource_type: str, resource: dict[str, Any]) -> str | None:
    """None when ``fhir.resources`` accepts the resource; else the error locations and types."""
    try:
        get_fhir_model_class(resource_type).model_validate(resource)
    except ValidationError as exc:
        errors = exc.errors(include_input=False, include_url=False, include_context=False)
        shown = [f"{_location(err['loc'])} ({err['type']})" for err in errors[:MAX_ERRORS_SHOWN]]
        more = f"; ... ({len(errors) - MAX_ERRORS_SHOWN} more)" if len(errors) > MAX_ERRORS_SHOWN else ""
        return "; ".join(shown) + more
    except Exception as exc:  # the library fails in other ways too: a number as a url is an AttributeError
        return f"validation failed ({type(exc).__name__})"
    return None


def _location(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += ("." if text else "") + (part if _LOC_NAME.match(part) else "?")
    return text or "resource"


def _label(resource: dict[str, Any]) -> str:
    rid = resource.get("id")
    shown_id = f"/{rid}" if isinstance(rid, str) and _FHIR_ID.match(rid) else ""
    return _type_name(resource) + shown_id


def _type_name(resource: dict[str, Any]) -> str:
    name = resource.get("resourceType")
    return name if isinstance(name, str) and _TYPE_NAME.match(name) else "resource"


# --- attachments ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Source:
    """One place in a resource that can give a record: an attachment, or a report's conclusion."""

    where: str  # "content[1]", for reasons
    suffix: str  # "#content1", for ids when the resource has several sources
    attachment: Any = None
    text: str | None = None


def _attachment_list(resource: dict[str, Any]) -> list[Any]:
    """The resource's attachments, by index (an entry that is not an attachment object is None)."""
    if resource.get("resourceType") == "DocumentReference":
        content = resource.get("content")
        items = content if isinstance(content, list) else []
        return [item.get("attachment") if isinstance(item, dict) else None for item in items]
    if resource.get("resourceType") == "DiagnosticReport":
        forms = resource.get("presentedForm")
        return list(forms) if isinstance(forms, list) else []
    return []


def _without_bad_base64(resource: dict[str, Any]) -> tuple[dict[str, Any], frozenset[int]]:
    """The resource without attachment data that is not base64, and the indexes of those attachments."""
    bad = frozenset(
        index
        for index, attachment in enumerate(_attachment_list(resource))
        if isinstance(attachment, dict)
        and isinstance(attachment.get("data"), str)
        and _decode_base64(attachment["data"]) is None
    )
    if not bad:
        return resource, bad
    cleaned = copy.deepcopy(resource)
    for index, attachment in enumerate(_attachment_list(cleaned)):
        if index in bad:
            del attachment["data"]
    return cleaned, bad


def _decode_base64(data: str) -> bytes | None:
    try:
        return base64.b64decode(data)  # as fhir.resources decodes it: characters outside base64 are dropped
    except (binascii.Error, ValueError):
        return None


def _sources(resource: dict[str, Any]) -> list[_Source]:
    field = "content" if resource.get("resourceType") == "DocumentReference" else "presentedForm"
    sources = [
        _Source(f"{field}[{index}]", f"#{field}{index}", attachment=attachment)
        for index, attachment in enumerate(_attachment_list(resource))
    ]
    conclusion = resource.get("conclusion")
    if resource.get("resourceType") == "DiagnosticReport" and isinstance(conclusion, str):
        sources.append(_Source("conclusion", "#conclusion", text=conclusion))
    return sources


def _attachment_records(resource: dict[str, Any], bad_base64: frozenset[int]) -> list[Record | RecordError]:
    label = _label(resource)
    sources = _sources(resource)
    several = len(sources) > 1
    records: list[Record | RecordError] = []
    for index, source in enumerate(sources):
        try:
            if source.text is not None:
                text, content_type = source.text, "text/plain"
            else:
                text, content_type = _attachment_text(source.attachment, index in bad_base64)
            if not text.strip():
                raise _Unusable("holds no text")
        except _Unusable as exc:
            records.append(RecordError(f"{label} {source.where}: {exc.reason}"))
            continue
        suffix = source.suffix if several else ""
        records.append(_record(resource, text, content_type, suffix))
    if not sources:
        records.append(RecordError(f"{label}: no attachment or conclusion"))
    return records


def _attachment_text(attachment: Any, bad_base64: bool) -> tuple[str, str]:
    """(text, media type) of a text/plain or text/html attachment with inline data."""
    if not isinstance(attachment, dict):
        raise _Unusable("no attachment")
    if bad_base64:
        raise _Unusable("data is not valid base64")
    content_type = attachment.get("contentType")
    if not isinstance(content_type, str):
        raise _Unusable("no content type")
    media_type, charset = _parse_content_type(content_type)
    if media_type not in TEXT_TYPES:
        shown = media_type if _MEDIA_TYPE.match(media_type) else "(not shown)"
        raise _Unusable(f"content type {shown} is not supported; supported: text/plain, text/html")
    data = attachment.get("data")
    if not isinstance(data, str):
        where = "only a url" if attachment.get("url") else "no data"
        raise _Unusable(f"has {where}; the text must be inline, as base64 data")
    text = _decode_text(_decode_base64(data) or b"", charset)
    return (html_to_text(text) if media_type == "text/html" else text), media_type


def _parse_content_type(value: str) -> tuple[str, str]:
    """``text/html; charset=ISO-8859-1`` -> ("text/html", "ISO-8859-1"); the charset defaults to UTF-8."""
    media_type, *parameters = value.split(";")
    charset = "utf-8"
    for parameter in parameters:
        name, _, given = parameter.partition("=")
        if name.strip().lower() == "charset" and given.strip().strip('"'):
            charset = given.strip().strip('"')
    return media_type.strip().lower(), charset


def _decode_text(data: bytes, charset: str) -> str:
    shown = charset if _CHARSET.match(charset) else "(not shown)"
    try:
        codec = codecs.lookup(charset).name
    except (LookupError, ValueError):  # ValueError: a name with a NUL or a lone surrogate in it
        raise _Unusable(f"unknown charset {shown}") from None
    try:
        return data.decode("utf-8-sig" if codec == "utf-8" else codec)
    except UnicodeDecodeError as exc:
        raise _Unusable(f"data is not valid {shown} text (byte {exc.start})") from None
    except UnicodeError:  # a codec's own complaint (idna), or the "undefined" codec
        raise _Unusable(f"data is not valid {shown} text") from None
    except LookupError:  # a codec that is not a text encoding: rot13, base64, hex, zlib ...
        raise _Unusable(f"charset {shown} is not a text encoding") from None


# --- composition ---------------------------------------------------------------------------------------


def _composition_record(resource: dict[str, Any]) -> Record | RecordError:
    """Section titles and narratives, nested sections in document order."""
    parts: list[str] = []
    pending = list(reversed(_list(resource.get("section"))))
    while pending:
        section = pending.pop()
        if not isinstance(section, dict):
            continue
        title = section.get("title")
        if isinstance(title, str) and title.strip():
            parts.append(title.strip())
        div = _path(section, "text", "div")
        if div is not None:
            narrative = html_to_text(div)
            if narrative:
                parts.append(narrative)
        pending.extend(reversed(_list(section.get("section"))))
    if not parts:
        return RecordError(f"{_label(resource)}: no section title or narrative")
    return _record(resource, "\n".join(parts), "text/plain", "")


# --- records -------------------------------------------------------------------------------------------


def _record(resource: dict[str, Any], text: str, content_type: str, suffix: str) -> Record:
    resource_type = str(resource["resourceType"])
    rid = resource.get("id")
    local_id = rid if isinstance(rid, str) else content_id(text).replace(":", "-")
    fields = {
        "id": f"{resource_type}/{local_id}{suffix}",
        "text": text,
        "resource_type": resource_type,
        "content_type": content_type,
        "patient": _path(resource, "subject", "reference"),
        "encounter": _encounter(resource),
        "date": _date(resource),
        "title": _title(resource),
    }
    return {name: value for name, value in fields.items() if value is not None}


def _encounter(resource: dict[str, Any]) -> str | None:
    if resource.get("resourceType") == "DocumentReference":
        return _path(resource, "context", "encounter", 0, "reference")
    return _path(resource, "encounter", "reference")


def _date(resource: dict[str, Any]) -> str | None:
    if resource.get("resourceType") == "DiagnosticReport":
        return _path(resource, "effectiveDateTime") or _path(resource, "issued")
    return _path(resource, "date")


def _title(resource: dict[str, Any]) -> str | None:
    if resource.get("resourceType") == "Composition" and _path(resource, "title"):
        return _path(resource, "title")
    concept = "code" if resource.get("resourceType") == "DiagnosticReport" else "type"
    return _path(resource, concept, "text") or _path(resource, concept, "coding", 0, "display")


def _path(value: Any, *steps: str | int) -> str | None:
    """The string at ``steps`` (keys and list indexes) inside ``value``, or None."""
    for step in steps:
        if isinstance(step, int):
            value = value[step] if isinstance(value, list) and len(value) > step else None
        else:
            value = value.get(step) if isinstance(value, dict) else None
    return value if isinstance(value, str) else None


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


# --- XHTML and HTML to text ----------------------------------------------------------------------------


def html_to_text(markup: str) -> str:
    """Plain text of (X)HTML: block elements become line breaks, entities decoded, blank lines dropped."""
    try:
        root = lxml.html.document_fromstring(markup.encode("utf-8"), parser=_HTML_PARSER)
    except (etree.LxmlError, ValueError):
        return ""  # nothing to parse (an empty document)
    pieces: list[str] = []
    skipped = preformatted = 0
    for event, element in etree.iterwalk(root, events=("start", "end")):
        tag = element.tag.rsplit("}", 1)[-1].lower() if isinstance(element.tag, str) else ""
        if event == "start":
            skipped += tag in _SKIPPED_TAGS
            preformatted += tag == "pre"
            if tag in _BLOCK_TAGS:
                pieces.append("\n")
            if not skipped and tag and element.text:
                pieces.append(_flow(element.text, preformatted))
            continue
        skipped -= tag in _SKIPPED_TAGS
        preformatted -= tag == "pre"
        if tag in _BLOCK_TAGS:
            pieces.append("\n")
        elif tag in _CELL_TAGS:
            pieces.append(" ")
        if not skipped and element.tail and element is not root:
            pieces.append(_flow(element.tail, preformatted))
    lines = (line.strip() for line in "".join(pieces).split("\n"))
    return "\n".join(line for line in lines if line)


def _flow(text: str, preformatted: int) -> str:
    """Whitespace in HTML text is one space, except inside ``<pre>``."""
    return text if preformatted else _WHITESPACE.sub(" ", text)
