"""Fuzzing HL7 v2 intake (hypothesis, >= 10,000 files) through ``push_files`` into the real Redis queue.

Generated: ``.hl7`` files of 0-5 items for the ``hl7`` preset, MLLP-framed (``\\x0b ... \\x1c\\r``),
separated by blank lines or plainly concatenated, with ``\\r``, ``\\n`` or ``\\r\\n`` segment ends and a BOM
or not. Messages are MDM^T02 (TXA-12 or MSH-10 ids) and ORU^R01 (OBR-3 ids) with the standard separators or
others (``#$%!*``), MSH-18 empty, ASCII, UTF-8 or 8859/1, and text in TX, FT and ST OBX segments with
repetitions and escape sequences (separators, ``\\.br\\``, ``\\.sp5\\``, ``\\Xhh\\`` for control bytes).
Each item is a good message (must be accepted with ``hl7:doc/...``, ``hl7:order/...`` or ``hl7:msg/...``),
a bad one (one certain defect: a type that carries no document, MSH-9 missing or malformed, no text OBX,
empty text, an unsupported MSH-18, no id, an id over 200 characters, a repeated id, ``\\XFF\\`` or a raw
0xFF in UTF-8 text, a line that is not a segment inside it, no MSH; or a garbage line between messages:
must be rejected), or anything at all (any message type, value types, charset, field values with broken
or unknown escape sequences, any text). Besides: byte-level accidents and raw garbage.

Asserted, besides ``push_and_check``'s generic properties (fuzz ``conftest.py``): a file whose items are
known gives one decision per item, numbered 1..n in order (accepted + rejected == items); good messages
accepted with their ids, bad ones rejected.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import pytest
from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

from nightclerk.producers.mapping import FieldMapping, load_preset
from nightclerk.producers.push import PushSummary
from nightclerk.producers.rejects import Reject
from nightclerk.producers.validation import Accepted
from nightclerk.shared.errors import InputError

SECRET = "PHI-SECRET-7f3a"
FUZZ_EXAMPLES = 10_000
MAPPING = load_preset("hl7")
STANDARD = ("|", "^", "~", "\\", "&")  # field, component, repetition, escape, subcomponent
OTHER = ("#", "$", "%", "!", "*")
CHARSETS = {"": "utf-8", "ASCII": "ascii", "UNICODE UTF-8": "utf-8", "8859/1": "latin-1"}
GARBAGE_LINES = [
    f"this is not hl7 {SECRET}",
    "----",
    f"<note>{SECRET}</note>",
    "12345",
    f"{{'n': '{SECRET}'}}",
]

# strategies built once (one built inside a composite is validated again on every draw)
SEPARATORS = st.sampled_from([STANDARD, STANDARD, OTHER])
CHARSET_NAMES = st.sampled_from(list(CHARSETS))
GOOD_KINDS = st.sampled_from(["MDM", "MDM-msh10", "ORU"])
TEXT_TYPES = st.sampled_from(["TX", "FT", "ST"])
REPETITIONS = st.integers(1, 3)
KINDS = st.sampled_from(["good", "good", "bad", "bad", "any", "any"])

Verdict = Literal["good", "bad", "any"]
Layout = Literal["mllp", "blank", "plain"]
Decision = tuple[int, Accepted | Reject]
PushAndCheck = Callable[
    [bytes, str, FieldMapping, str | None], tuple[PushSummary | InputError, list[Decision]]
]


@dataclass
class Message:
    """One item of a file: its lines (segments, or not), how it is encoded, what it must come to."""

    lines: list[str]
    encoding: str = "utf-8"
    verdict: Verdict = "any"
    expected_id: str | None = None
    starts_with_msh: bool = True
    raw_tail: bytes = b""  # bytes put after the last line's text (an undecodable byte)


def escape(text: str, seps: tuple[str, ...]) -> str:
    """``text`` as an HL7 field value: separators escaped, line breaks as ``\\.br\\``, control bytes hex."""
    field, component, repetition, esc, sub = seps
    out = text.replace(esc, f"{esc}E{esc}")
    for char, code in ((field, "F"), (component, "S"), (repetition, "R"), (sub, "T")):
        out = out.replace(char, f"{esc}{code}{esc}")
    out = (
        out.replace("\r\n", f"{esc}.br{esc}").replace("\n", f"{esc}.br{esc}").replace("\r", f"{esc}.br{esc}")
    )
    return out.replace("\x0b", f"{esc}X0B{esc}").replace("\x1c", f"{esc}X1C{esc}")


def _segment(seps: tuple[str, ...], name: str, fields: dict[int, str]) -> str:
    """A segment with ``fields`` at their HL7 positions (MSH: MSH-3 onwards; MSH-1 and MSH-2 are set here)."""
    field = seps[0]
    if name == "MSH":
        top = max(fields, default=2)
        values = [fields.get(i, "") for i in range(3, top + 1)]
        return "MSH" + field + seps[1] + seps[2] + seps[3] + seps[4] + field + field.join(values)
    top = max(fields, default=0)
    return name + field + field.join(fields.get(i, "") for i in range(1, top + 1))


@st.composite
def good_message(draw: st.DrawFn, values: dict[str, SearchStrategy[Any]], number: int) -> Message:
    seps = draw(SEPARATORS)
    charset = draw(CHARSET_NAMES)
    encoding = CHARSETS[charset]
    comp = seps[1]

    def text_value(text: str) -> str:
        return escape(text.encode(encoding, "replace").decode(encoding), seps)

    kind = draw(GOOD_KINDS)
    message_type = f"MDM{comp}T02{comp}MDM_T02" if kind.startswith("MDM") else f"ORU{comp}R01"
    msh = {4: text_value(f"NORTH {SECRET}"), 7: "20240305101500", 9: message_type, 10: f"CTRL-{number}"}
    msh |= {11: "P", 12: "2.5.1"} | ({18: charset} if charset else {})
    lines = [_segment(seps, "MSH", msh)]
    lines.append(
        _segment(seps, "PID", {1: "1", 3: text_value(f"MRN-{SECRET}") + f"{comp}{comp}{comp}HOSP", 5: "DOE"})
    )
    if draw(st.booleans()):
        lines.append(_segment(seps, "PV1", {1: "1", 2: "O", 19: text_value(f"V-{SECRET}")}))
    if kind == "MDM":
        lines.append(
            _segment(
                seps, "TXA", {1: "1", 2: f"PN{comp}" + text_value(f"Progress {SECRET}"), 12: f"good-{number}"}
            )
        )
        expected = f"hl7:doc/good-{number}"
    elif kind == "MDM-msh10":
        lines.append(_segment(seps, "TXA", {1: "1", 2: "PN"}))
        expected = f"hl7:msg/CTRL-{number}"
    else:
        lines.append(
            _segment(seps, "OBR", {1: "1", 3: f"good-{number}{comp}LAB", 4: "11526-1", 7: "20240401"})
        )
        expected = f"hl7:order/good-{number}"
    texts = [draw(values["good_text"]) for _ in range(draw(REPETITIONS))]
    value_type = draw(TEXT_TYPES)
    lines.append(
        _segment(seps, "OBX", {1: "1", 2: value_type, 3: "NOTE", 5: seps[2].join(map(text_value, texts))})
    )
    if draw(st.booleans()):
        lines.append(_segment(seps, "OBX", {1: "2", 2: "NM", 3: "2345-7", 5: "99"}))
    return Message(lines, encoding, "good", expected)


@st.composite
def bad_message(
    draw: st.DrawFn,
    values: dict[str, SearchStrategy[Any]],
    number: int,
    earlier: Sequence[Message],
    layout: Layout,
) -> Message:
    """A good message with one certain defect, or a garbage line."""
    message = draw(good_message(values, number))
    seps = STANDARD if message.lines[0][3] == "|" else OTHER
    field, comp, _, esc, _ = seps
    defects = [
        "type",
        "no-type",
        "no-text",
        "empty-text",
        "charset",
        "no-id",
        "long-id",
        "ff",
        "line",
        "garbage",
    ]
    defects += ["duplicate"] if any(m.verdict == "good" for m in earlier) else []
    defects += ["no-msh"] if layout != "plain" else []
    defect = draw(st.sampled_from(defects))
    msh = message.lines[0].split(field)
    if defect == "garbage":
        return Message([draw(st.sampled_from(GARBAGE_LINES))], verdict="bad", starts_with_msh=False)
    if defect == "type":
        msh[8] = draw(st.sampled_from([f"ADT{comp}A01", f"MDM{comp}T01", f"ORU{comp}R02", f"ACK{comp}A01"]))
    elif defect == "no-type":
        msh[8] = draw(
            st.sampled_from(
                ["", "MDM", f"mdm{comp}t02", f"{comp}T02", f"MDM{comp}", "MDMX" * 2 + f"{comp}T02"]
            )
        )
    elif defect == "no-text":
        message.lines = [line for line in message.lines if not line.startswith("OBX")]
        if draw(st.booleans()):
            message.lines.append(_segment(seps, "OBX", {1: "1", 2: "CE", 5: f"X{comp}{SECRET}"}))
    elif defect == "empty-text":
        message.lines = [line for line in message.lines if not line.startswith("OBX")]
        blank = draw(st.sampled_from(["", "   ", f"{esc}.br{esc}", f"{esc}H{esc}{esc}N{esc}", seps[2]]))
        message.lines.append(_segment(seps, "OBX", {1: "1", 2: "TX", 5: blank}))
    elif defect == "charset":
        msh += [""] * (18 - len(msh))
        msh[17] = draw(st.sampled_from(["ISO IR87", "UTF-16", "bogus", "8859/5", "UNICODE"]))
    elif defect in ("no-id", "long-id", "duplicate"):
        if defect == "duplicate":
            first = draw(st.sampled_from([m for m in earlier if m.verdict == "good"]))
            message.lines = list(first.lines)  # the same document again (a new message would keep the id)
            return Message(message.lines, first.encoding, "bad")
        new = "" if defect == "no-id" else "x" * 250
        for index, line in enumerate(message.lines):
            parts = line.split(field)
            if parts[0] == "TXA" and len(parts) > 12:
                parts[12] = new
            elif parts[0] == "OBR":
                parts[3] = new
            message.lines[index] = field.join(parts)
        msh[9] = new  # MSH-10, the fallback, too
    elif defect == "ff":
        if message.encoding in ("utf-8", "ascii"):  # MSH-18 empty, ASCII or UTF-8: read as UTF-8
            message.lines = [line for line in message.lines if not line.startswith(f"OBX{field}2{field}NM")]
            if draw(st.booleans()):  # the text OBX is the last line now, OBX-5 its last field
                message.lines[-1] += f"{esc}XFF{esc}"
            else:
                message.raw_tail = b"\xff"
        else:  # no byte is invalid in 8859/1: a type that carries no document instead
            msh[8] = f"ADT{comp}A08"
    elif defect == "line":
        message.lines.insert(len(message.lines) - 1, draw(st.sampled_from(GARBAGE_LINES)))
    else:  # no-msh
        message.lines = message.lines[1:]
        return Message(message.lines, message.encoding, "bad", starts_with_msh=False)
    message.lines[0] = field.join(msh)
    return Message(message.lines, message.encoding, "bad", raw_tail=message.raw_tail)


ESCAPES = [
    "\\F\\", "\\S\\", "\\T\\", "\\R\\", "\\E\\", "\\.br\\", "\\.sp5\\", "\\.sp99999\\", "\\.spx\\", "\\.ce\\",
    "\\.in+4\\", "\\X41\\", "\\X4\\", "\\Xzz\\", "\\XC3A9\\", "\\XFF\\", "\\XC3\\", "\\H\\", "\\N\\",
    "\\C2842\\", "\\M2442\\", "\\Zfoo\\", "\\", "\\X\\", "\\\\", "\\.sp\\",
]  # fmt: skip
ID_FIELDS = {("TXA", 12), ("OBR", 3)}  # where document ids come from (MSH-10 too: set above, id-like only)
_LINE_BREAKS = str.maketrans({"\r": " ", "\n": " ", "\x0b": " ", "\x1c": " "})


@st.composite
def any_message(draw: st.DrawFn, values: dict[str, SearchStrategy[Any]], number: int) -> Message:
    """A good message with any of its fields replaced by anything (line breaks kept out: one item)."""
    message = draw(good_message(values, number))
    field = message.lines[0][3]
    esc = "\\" if field == "|" else "!"

    def anything(strategy: str) -> str:
        value: str = draw(values[strategy])
        if draw(st.booleans()):
            value += draw(st.sampled_from(ESCAPES)).replace("\\", esc) + draw(values[strategy])
        return value.translate(_LINE_BREAKS)

    lines = [line.split(field) for line in message.lines]
    for _ in range(draw(st.integers(1, 4))):
        where = draw(
            st.sampled_from(["MSH-2", "MSH-9", "MSH-10", "MSH-18", "id", "OBX-2", "OBX-5", "PID-3", "any"])
        )
        if where == "MSH-2":
            lines[0][1] = draw(st.sampled_from(["^~\\&", "^~\\", "^^\\&", "^~&\\", "", "^~\\&#", "ab\\&"]))
        elif where.startswith("MSH-"):
            position = int(where[4:]) - 1
            lines[0] += [""] * (position + 1 - len(lines[0]))
            choices = {
                8: ["MDM^T02", "ORU^R01", "MDM^T06", "ADT^A01", "", "MDM^T02^MDM_T02^X"],
                17: list(CHARSETS),
            }
            extra = choices.get(position, [])
            lines[0][position] = draw(
                st.one_of(st.sampled_from(extra or [""]), st.just(anything("messy_plain")))
            )
        else:
            name, index = {
                "id": ("TXA", 12),
                "OBX-2": ("OBX", 2),
                "OBX-5": ("OBX", 5),
                "PID-3": ("PID", 3),
            }.get(
                where, (draw(st.sampled_from([p[0] for p in lines[1:]] or ["MSH"])), draw(st.integers(1, 20)))
            )
            if name == "TXA" and not any(p[0] == "TXA" for p in lines):
                name, index = "OBR", 3
            for parts in lines[1:]:
                if parts[0] == name:
                    parts += [""] * (index + 1 - len(parts))
                    if where == "OBX-2":
                        parts[index] = draw(
                            st.sampled_from(["TX", "FT", "ST", "NM", "CE", "ED", "", "tx", " TX "])
                        )
                    else:
                        is_id = (name, index) in ID_FIELDS  # ids are shown in rejects: never the secret
                        parts[index] = anything("messy_plain" if is_id else "messy_text")
                    break
    if draw(st.integers(0, 4)) == 0:
        lines.insert(draw(st.integers(1, len(lines))), ["ZDS", anything("messy_text")])
    return Message([field.join(parts) for parts in lines], message.encoding, "any")


def _encode(line: str, encoding: str) -> bytes:
    try:
        return line.encode(encoding, errors="surrogateescape")
    except UnicodeEncodeError:
        return line.encode(encoding, errors="replace")


@st.composite
def hl7_files(
    draw: st.DrawFn, values: dict[str, SearchStrategy[Any]], mutate: Callable[[bytes], SearchStrategy[bytes]]
) -> tuple[str, bytes, list[Message]]:
    """(mode, bytes, the items in order) -- the items only where their number is known."""
    mode = draw(st.sampled_from(["structured"] * 8 + ["mutated", "garbage"]))
    if mode == "garbage":
        return mode, draw(values["garbage"]), []
    layout: Layout = draw(st.sampled_from(["mllp", "blank", "plain"]))
    messages: list[Message] = []
    for index in range(draw(st.integers(0, 5))):
        kind = draw(KINDS)
        if kind == "good":
            message = draw(good_message(values, index))
        elif kind == "bad":
            message = draw(bad_message(values, index, messages, layout))
            if (
                layout == "plain"
                and not message.starts_with_msh
                and messages
                and not messages[-1].starts_with_msh
            ):
                message = draw(good_message(values, index))  # two garbage lines in a row are one item
        else:
            message = draw(any_message(values, index))
        messages.append(message)
    end = draw(st.sampled_from([b"\r", b"\n", b"\r\n"]))
    chunks: list[bytes] = []
    for message in messages:
        body = end.join(_encode(line, message.encoding) for line in message.lines) + message.raw_tail
        if layout == "mllp":
            chunks.append(b"\x0b" + body + end + b"\x1c\r" + draw(st.sampled_from([b"", b"\n"])))
        else:
            chunks.append(body + end + (end if layout == "blank" else b""))
    data = draw(st.sampled_from([b"", b"\xef\xbb\xbf"])) + b"".join(chunks)
    if mode == "mutated":
        return mode, draw(mutate(data)), []
    return mode, data, messages


@pytest.mark.fuzz
def test_fuzz_hl7(
    run_fuzz: Callable[[SearchStrategy[Any], Callable[[Any], None]], None],
    fuzz_values: dict[str, SearchStrategy[Any]],
    mutate: Callable[[bytes], SearchStrategy[bytes]],
    push_and_check: PushAndCheck,
    verdicts: Callable[[Sequence[tuple[Verdict, str | None]], Sequence[Accepted | Reject]], None],
) -> None:
    def one_file(case: tuple[str, bytes, list[Message]]) -> None:
        mode, data, messages = case
        outcome, decisions = push_and_check(data, "messages.hl7", MAPPING, None)
        if mode != "structured":
            return
        if not messages:
            assert isinstance(outcome, InputError), "a file without messages was not refused"
            return
        assert isinstance(outcome, PushSummary), f"a file of messages was refused: {outcome}"
        assert [number for number, _ in decisions] == list(range(1, len(messages) + 1))
        verdicts([(m.verdict, m.expected_id) for m in messages], [result for _, result in decisions])

    run_fuzz(hl7_files(fuzz_values, mutate), one_file)
