"""HL7 v2 messages -> records: the note text of MDM (T02, T04, T06, T08, T10) and ORU^R01 messages.

Why it is written this way:

* A file is read incrementally, 1 MiB at a time, and split into messages before anything is parsed, so
  memory is bounded by the largest message, not the file. Segment ends may be ``\\r``, ``\\n`` or
  ``\\r\\n`` (files that went through Windows or Unix tools); messages may be MLLP-framed
  (``\\x0b`` ... ``\\x1c\\r``) or plainly concatenated. A message ends at a frame mark, a blank line or the
  next ``MSH`` segment.
* Lines that are not HL7 segments after a message's last segment (garbage between messages) are an item of
  their own, so they never sink the message before them; such a line *inside* a message makes that message
  unparseable -- a note silently cut short would be worse than a reject. A block that does not start with
  ``MSH`` is one item too. Items are numbered by their position in the file (1-based), bad ones included.
* Each message is parsed with the PyPI ``hl7`` library (``hl7.parse``: segments, fields and the separators
  of MSH-1/MSH-2). Field values are then taken as raw strings and split by those separators here, since the
  depth of the library's containers depends on whether a value holds a separator.
* Escape sequences are decoded by :func:`unescape`, written by hand rather than ``hl7.unescape``: that one
  (hl7 0.4.5) logs the whole field value at WARNING/ERROR for an unknown or malformed sequence (PHI in the
  logs), turns ``\\.br\\`` into ``\\r`` and decodes ``\\Xhh..\\`` one byte per code point, which garbles
  UTF-8. Here ``\\F\\ \\S\\ \\T\\ \\R\\ \\E\\`` become their separators, ``\\.br\\``, ``\\.sp\\``
  (``\\.spN\\``: N breaks) and ``\\.ce\\`` line breaks, ``\\Xhh..\\`` the bytes in the message's
  character set (MSH-18), and other sequences (highlighting, character-set switches, ``\\.in\\`` ...) are
  dropped, as ``hl7.unescape`` does.
* The text is the observation value (OBX-5) of every OBX of value type TX, FT or ST, in order; each
  repetition is a line. Other value types (NM, CE, ED, ...) are not note text and are skipped.
* The id must stay the same when the same document comes again in a new message, so it is not the message
  control id when the message names the document: ``doc/{TXA-12.1}`` (unique document number) for MDM,
  ``order/{OBR-3.1}`` (filler order number of the first OBR) for ORU, else ``msg/{MSH-10}``. The prefix
  keeps the three number spaces apart. Characters a document id does not allow become ``_``; an id over
  200 characters is rejected.
* Reasons name the message number, its type (when it looks like one) and segment/field positions -- never
  a value or text: HL7 fields are PHI.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, BinaryIO

import hl7

from nightclerk.producers.readers import Item, Record, RecordError

RECORD_COLUMNS: tuple[str, ...] = (
    "id",
    "text",
    "message_type",
    "patient",
    "encounter",
    "date",
    "document_type",
    "sending_facility",
)
# MDM triggers with document content; T01, T03, T05, T07, T09 and T11 are notifications without it.
SUPPORTED_TYPES: tuple[str, ...] = ("MDM^T02", "MDM^T04", "MDM^T06", "MDM^T08", "MDM^T10", "ORU^R01")
TEXT_VALUE_TYPES: tuple[str, ...] = ("TX", "FT", "ST")
MAX_ID_LENGTH = 200
READ_SIZE = 1 << 20

# Character sets of MSH-18 (HL7 table 0211) that are read; an empty MSH-18 means UTF-8 (ASCII's superset).
CHARSETS: dict[str, str] = {
    "": "utf-8",
    "ASCII": "utf-8",
    "UNICODE UTF-8": "utf-8",
    "8859/1": "latin-1",
    "8859/2": "iso8859-2",
    "8859/15": "iso8859-15",
}

_BREAK = re.compile(rb"\r\n|\r|\n|\x0b|\x1c")
_FRAME_MARKS = (b"\x0b", b"\x1c")
_SEGMENT_ID = re.compile(rb"^[A-Z][A-Z0-9]{2}")
_MESSAGE_TYPE_PART = re.compile(r"^[A-Z0-9]{2,4}$")
_ID_FORBIDDEN = re.compile(r"[^A-Za-z0-9._\-/#@+]")
_HEX = re.compile(r"^(?:[0-9A-Fa-f]{2})+$")
_BOM = b"\xef\xbb\xbf"


class _Unusable(Exception):
    """A message cannot give a record; ``reason`` holds no value from the message."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# --- splitting a file into messages --------------------------------------------------------------------


def file_items(stream: BinaryIO) -> Iterator[Item]:
    """One item per message (or per block that is not one), numbered by position in the file."""
    number = 0
    for block in _blocks(stream):
        for part in _split_trailing_garbage(block):
            number += 1
            yield number, message_record(number, part)


def _lines(stream: BinaryIO) -> Iterator[bytes | None]:
    """The lines of ``stream`` without their ends; None for an MLLP frame mark."""
    buffer = bytearray()
    first = True
    while True:
        chunk = stream.read(READ_SIZE)
        eof = not chunk
        scan_from = max(len(buffer) - 1, 0)  # a line longer than a read is not scanned again
        buffer += chunk
        start = 0
        for match in _BREAK.finditer(buffer, scan_from):
            if not eof and match.end() == len(buffer) and match.group() == b"\r":
                break  # the "\n" of a "\r\n" may be in the next read
            line = bytes(buffer[start : match.start()])
            yield line.removeprefix(_BOM) if first else line
            first = False
            if match.group() in _FRAME_MARKS:
                yield None
            start = match.end()
        del buffer[:start]
        if eof:
            if buffer:
                yield bytes(buffer).removeprefix(_BOM) if first else bytes(buffer)
            return


def _blocks(stream: BinaryIO) -> Iterator[list[bytes]]:
    """Runs of lines between frame marks, blank lines and MSH segments."""
    block: list[bytes] = []
    for line in _lines(stream):
        if line is None or not line.strip():
            if block:
                yield block
                block = []
            continue
        if _is_msh(line) and block:
            yield block
            block = []
        block.append(line)
    if block:
        yield block


def _is_msh(line: bytes) -> bool:
    return line.startswith(b"MSH") and len(line) > 3 and not line[3:4].isalnum() and not line[3:4].isspace()


def _is_segment(line: bytes, separator: bytes) -> bool:
    return _SEGMENT_ID.match(line) is not None and (len(line) == 3 or line[3:4] == separator)


def _split_trailing_garbage(block: list[bytes]) -> list[list[bytes]]:
    """A message, and the lines after its last segment (not HL7) as a block of their own."""
    if not _is_msh(block[0]):
        return [block]
    separator = block[0][3:4]
    last = max(index for index, line in enumerate(block) if _is_segment(line, separator) or index == 0)
    if last == len(block) - 1:
        return [block]
    return [block[: last + 1], block[last + 1 :]]


# --- one message ---------------------------------------------------------------------------------------


def message_record(number: int, lines: list[bytes]) -> Record | RecordError:
    """The record of one message (its segments, without segment ends), or why there is none."""
    try:
        return _record(number, lines)
    except _Unusable as exc:
        return RecordError(exc.reason)


def _record(number: int, lines: list[bytes]) -> Record:
    label = f"message {number}"
    if not _is_msh(lines[0]):
        if _SEGMENT_ID.match(lines[0]):
            raise _Unusable(f"{label}: no MSH segment; the message starts with another segment")
        raise _Unusable(f"{label}: not HL7 (no MSH segment)")
    separator = lines[0][3:4]
    for index, line in enumerate(lines[1:], start=2):
        if not _is_segment(line, separator):
            raise _Unusable(f"{label}: not parseable: line {index} is not an HL7 segment")
    encoding = _encoding(label, lines[0])
    try:
        message = hl7.parse("\r".join(line.decode(encoding, errors="surrogateescape") for line in lines))
    except Exception:  # any failure: its message could quote the input
        raise _Unusable(f"{label}: not parseable") from None
    parsed = _Message(label, message)
    message_type = parsed.message_type()
    if message_type is None:
        raise _Unusable(f"{label}: MSH-9 message type is missing or malformed")
    if message_type not in SUPPORTED_TYPES:
        raise _Unusable(
            f"{label}: {message_type} carries no document; supported: {', '.join(SUPPORTED_TYPES)}"
        )
    label = f"{label} ({message_type})"
    text = parsed.text(encoding)
    if text is None:
        raise _Unusable(
            f"{label}: no OBX of type {', '.join(TEXT_VALUE_TYPES[:-1])} or {TEXT_VALUE_TYPES[-1]}"
        )
    if not text.strip():
        raise _Unusable(f"{label}: OBX text is empty")
    mdm = message_type.startswith("MDM")
    fields = {
        "id": parsed.document_id(label, mdm, encoding),
        "text": text,
        "message_type": message_type,
        "patient": parsed.value(encoding, "PID", 3),
        "encounter": parsed.value(encoding, "PV1", 19),
        "date": (
            (parsed.value(encoding, "TXA", 4) if mdm else parsed.value(encoding, "OBR", 7))
            or parsed.value(encoding, "MSH", 7)
        ),
        "document_type": (
            parsed.value(encoding, "TXA", 2, component=2) or parsed.value(encoding, "TXA", 2)
            if mdm
            else parsed.value(encoding, "OBR", 4, component=2) or parsed.value(encoding, "OBR", 4)
        ),
        "sending_facility": parsed.value(encoding, "MSH", 4),
    }
    return {name: value for name, value in fields.items() if value}


def _encoding(label: str, msh: bytes) -> str:
    """The Python codec for MSH-18 (first repetition), read from the raw MSH line."""
    separator = msh[3:4]
    fields = msh.split(separator)  # fields[k] is MSH-(k+1)
    raw = fields[17] if len(fields) > 17 else b""
    encoding_chars = fields[1] if len(fields) > 1 else b""
    repetition = encoding_chars[1:2] or b"~"
    charset = raw.split(repetition)[0].decode("ascii", errors="replace").strip().upper()
    codec = CHARSETS.get(charset)
    if codec is None:
        supported = ", ".join(name for name in CHARSETS if name)
        raise _Unusable(f"{label}: the MSH-18 character set is not supported; supported: {supported}")
    return codec


class _Message:
    """Field access on an ``hl7.Message`` by HL7 position (``PID-3.1``), raw or unescaped."""

    def __init__(self, label: str, message: Any) -> None:
        self.message = message
        separators = str(message.separators)  # segment, field, repetition, component, subcomponent
        marks = separators[1:] + str(message.esc)
        if len(separators) != 5 or len(set(marks)) != 5 or any(c.isalnum() or c.isspace() for c in marks):
            raise _Unusable(f"{label}: not parseable: the MSH-1/MSH-2 separators are not 5 distinct marks")
        self.field_separator = separators[1]
        self.repetition = separators[2]
        self.component = separators[3]
        self.subcomponent = separators[4]
        self.escape = str(message.esc)

    def segments(self, name: str) -> Iterator[Any]:
        for segment in self.message:
            if len(segment) and str(segment[0]) == name:
                yield segment

    def raw(self, segment: Any, field: int) -> str:
        """The raw text of a field (MSH counts MSH-1 as field 1, as the library's MSH indexing does)."""
        return str(segment[field]) if len(segment) > field else ""

    def first(self, name: str, field: int, component: int = 1) -> str:
        """The raw first repetition's component of a field of the first ``name`` segment, or ""."""
        for segment in self.segments(name):
            first_repetition = self.raw(segment, field).split(self.repetition)[0]
            components = first_repetition.split(self.component)
            value = components[component - 1] if len(components) >= component else ""
            return value.split(self.subcomponent)[0]
        return ""

    def value(self, encoding: str, name: str, field: int, component: int = 1) -> str | None:
        return unescape(self.first(name, field, component), self, encoding).strip() or None

    def message_type(self) -> str | None:
        code, event = self.first("MSH", 9, 1).strip(), self.first("MSH", 9, 2).strip()
        if not (_MESSAGE_TYPE_PART.match(code) and _MESSAGE_TYPE_PART.match(event)):
            return None
        return f"{code}^{event}"

    def text(self, encoding: str) -> str | None:
        """The OBX-5 lines of the text OBX segments; None when there is no such OBX."""
        lines: list[str] | None = None
        for segment in self.segments("OBX"):
            value_type = self.raw(segment, 2).split(self.component)[0].strip().upper()
            if value_type not in TEXT_VALUE_TYPES:
                continue
            lines = lines if lines is not None else []
            for repetition in self.raw(segment, 5).split(self.repetition):
                lines.append(unescape(repetition, self, encoding))
        return None if lines is None else "\n".join(lines).strip("\n")

    def document_id(self, label: str, mdm: bool, encoding: str) -> str:
        field = "TXA-12" if mdm else "OBR-3"
        own = self.value(encoding, "TXA", 12) if mdm else self.value(encoding, "OBR", 3)
        prefix = "doc" if mdm else "order"
        if own is None:
            own = self.value(encoding, "MSH", 10)
            field, prefix = "MSH-10", "msg"
        if own is None:
            raise _Unusable(f"{label}: no document id: {'TXA-12' if mdm else 'OBR-3'} and MSH-10 are empty")
        document_id = f"{prefix}/{_ID_FORBIDDEN.sub('_', own)}"
        if len(document_id) > MAX_ID_LENGTH:
            raise _Unusable(
                f"{label}: {field} is too long for a document id (at most {MAX_ID_LENGTH} characters)"
            )
        return document_id


# --- escape sequences ----------------------------------------------------------------------------------


def unescape(value: str, message: _Message, encoding: str) -> str:
    """``value`` with its HL7 escape sequences decoded (see the module docstring); never logs."""
    esc = message.escape
    if esc not in value:
        return value
    simple = {
        "F": message.field_separator,
        "S": message.component,
        "T": message.subcomponent,
        "R": message.repetition,
        "E": esc,
    }
    pieces: list[str] = []
    position = 0
    while True:
        start = value.find(esc, position)
        end = value.find(esc, start + 1) if start >= 0 else -1
        if end < 0:
            pieces.append(value[position:])  # no (complete) sequence left: the rest as written
            return "".join(pieces)
        pieces.append(value[position:start])
        pieces.append(_decode_sequence(value[start + 1 : end], simple, encoding))
        position = end + 1


def _decode_sequence(sequence: str, simple: dict[str, str], encoding: str) -> str:
    if sequence in simple:
        return simple[sequence]
    if sequence[:1] == "X" and _HEX.match(sequence[1:]):
        return bytes.fromhex(sequence[1:]).decode(encoding, errors="surrogateescape")
    command, argument = sequence[:3], sequence[3:].strip()
    if command in (".br", ".ce"):
        return "\n"
    if command == ".sp":
        count = int(argument) if argument.isascii() and argument.isdigit() and len(argument) < 4 else 1
        return "\n" * max(min(count, 100), 1)
    return ""  # .fi .nf .in .ti .sk, highlighting (H, N), character-set switches (C, M), Z..: dropped
