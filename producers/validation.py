"""Record + mapping -> a validated document, or a :class:`Reject` whose reason never quotes document text."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from string import Formatter
from typing import Any

from pydantic import ValidationError

from nightclerk.producers.chunking import AnyDocument, document_json_bytes
from nightclerk.producers.mapping import LINE_FIELD, SEQ_FIELD, FieldMapping, field_value
from nightclerk.producers.readers import RecordError
from nightclerk.producers.rejects import Reject
from nightclerk.shared.documents import DOCUMENT_ADAPTER, KINDS, content_id, has_lone_surrogate

_SHOWABLE_KIND = re.compile(r"^[A-Za-z0-9_\-]{1,40}$")
_SHOWABLE_ID = re.compile(r"^[\x21-\x7e]{1,256}$")


@dataclass(frozen=True)
class Accepted:
    document: AnyDocument
    json_bytes: int  # the document's size inside a queue message


def _as_str(value: Any) -> str | None:
    """A scalar field value as a string; None for missing, null or nested values."""
    if value is None or isinstance(value, dict | list):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else str(value)


def _metadata_value(value: Any) -> str | None:
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return _as_str(value)


def _pydantic_reason(exc: ValidationError, kind: str) -> str:
    parts = []
    for err in exc.errors(include_input=False, include_url=False, include_context=False):
        loc = [str(p) for p in err["loc"]]
        if loc and loc[0] == kind:
            loc = loc[1:]
        parts.append(f"{'.'.join(loc) or 'document'}: {err['msg'].removeprefix('Value error, ')}")
    return "; ".join(parts)


class _Invalid(Exception):
    def __init__(self, reason: str, document_id: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.document_id = document_id


class Validator:
    """Validates the records of one push run; remembers ids to reject duplicates across its files."""

    def __init__(self, mapping: FieldMapping, *, max_text_bytes: int, max_json_bytes: int) -> None:
        self.mapping = mapping
        self.max_text_bytes = max_text_bytes
        self.max_json_bytes = max_json_bytes
        self._seen: dict[str, tuple[str, int]] = {}
        self._seq: dict[tuple[str, ...], int] = {}
        self._template = list(Formatter().parse(mapping.id_template)) if mapping.id_template else []

    def start_file(self) -> None:
        """``{_seq}`` counts within one file."""
        self._seq.clear()

    def validate(self, file: str, line: int, record: dict[str, Any] | RecordError) -> Accepted | Reject:
        if isinstance(record, RecordError):
            return Reject(file, line, None, record.reason)
        try:
            document = self._build(line, record)
        except _Invalid as exc:
            return Reject(file, line, exc.document_id, exc.reason)
        first = self._seen.get(document.id)
        if first is not None:
            return Reject(file, line, document.id, f"duplicate id, first seen at {first[0]}:{first[1]}")
        size = document_json_bytes(document)
        if size > self.max_json_bytes:
            reason = f"document is {size} bytes as JSON, a chunk holds at most {self.max_json_bytes}"
            return Reject(file, line, document.id, reason)
        self._seen[document.id] = (file, line)
        return Accepted(document, size)

    def _build(self, line: int, record: dict[str, Any]) -> AnyDocument:
        m = self.mapping
        source_id = self._source_id(line, record)  # first: {_seq} counts every record that renders
        kind = m.kind or _as_str(field_value(record, m.kind_field or ""))
        if not kind or not kind.strip():
            raise _Invalid(f"{m.kind_field}: missing")
        kind = kind.strip()
        if kind not in KINDS:
            shown = repr(kind) if _SHOWABLE_KIND.match(kind) else "(value not shown)"
            raise _Invalid(f"{m.kind_field}: unknown kind {shown}; kinds: {', '.join(KINDS)}")
        text = field_value(record, m.text_field)
        if text is None:
            raise _Invalid(f"text ({m.text_field}): missing")
        if not isinstance(text, str):
            raise _Invalid(f"text ({m.text_field}): not a string")
        more = [field_value(record, name) for name in m.more_text_fields]
        text = "\n\n".join([text, *(part for part in more if isinstance(part, str) and part.strip())])
        known_id = self._known_id(source_id, text)
        size = len(text.encode("utf-8", "surrogatepass"))
        if size > self.max_text_bytes:
            raise _Invalid(f"text is {size} bytes, limit {self.max_text_bytes}", known_id)
        metadata = {
            name: value
            for name in m.metadata_fields
            if (value := _metadata_value(field_value(record, name))) is not None
        }
        title = _as_str(field_value(record, m.title_field)) if m.title_field else None
        if title is not None and kind != "literature":
            metadata["title"] = title
            title = None
        for field, value in (("text", text), ("source_id", source_id), ("title", title), *metadata.items()):
            if value is not None and has_lone_surrogate(value):
                where = field if field in ("text", "source_id", "title") else f"metadata.{field}"
                raise _Invalid(f"{where}: not valid UTF-8", known_id if field != "source_id" else None)
        payload: dict[str, Any] = {
            "kind": kind,
            "source": m.source,
            "source_id": source_id,
            "text": text,
            "metadata": metadata,
        }
        if title is not None:
            payload["title"] = title
        try:
            return DOCUMENT_ADAPTER.validate_python(payload)
        except ValidationError as exc:
            raise _Invalid(_pydantic_reason(exc, kind), known_id) from None

    def _source_id(self, line: int, record: dict[str, Any]) -> str | None:
        m = self.mapping
        if m.id_field:
            value = _as_str(field_value(record, m.id_field))
            if value is None or not value.strip():
                raise _Invalid(f"source_id ({m.id_field}): missing")
            return value.strip()
        if not self._template:
            return None
        values: dict[str, str] = {LINE_FIELD: str(line)}
        for _, name, _, _ in self._template:
            if name is None or name in (LINE_FIELD, SEQ_FIELD):
                continue
            value = _as_str(field_value(record, name))
            if value is None or not value.strip():
                raise _Invalid(f"source_id: id_template field {name} is missing")
            values[name] = value.strip()
        key = tuple(values[name] for _, name, _, _ in self._template if name and name != SEQ_FIELD)
        seq = self._seq.get(key, 0) + 1
        self._seq[key] = seq
        values[SEQ_FIELD] = str(seq)
        return "".join(literal + (values[name] if name else "") for literal, name, _, _ in self._template)

    def _known_id(self, source_id: str | None, text: str) -> str | None:
        """The document id, for the rejects file, where it can be told without full validation."""
        if source_id is not None:
            candidate = f"{self.mapping.source}:{source_id}"
            return candidate if _SHOWABLE_ID.match(candidate) else None
        if has_lone_surrogate(text):
            return None
        return f"{self.mapping.source}:{content_id(text)}"
