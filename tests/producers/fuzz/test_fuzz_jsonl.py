"""Fuzzing JSONL intake (hypothesis, >= 10,000 files) through ``push_files`` into the real Redis queue.

Generated: JSONL files (``.jsonl`` or ``.ndjson``) for the ``mtsamples``, ``nestor``, ``jira`` (dotted paths
into nested objects, a second text field), ``servicenow`` and ``pubmed`` presets and a mapping without an
id (content-hash ids). Each line is a good record (must be accepted with its id), a bad one (one certain
defect: text empty, blank, missing, of the wrong type, over the limit or with a lone surrogate; a lone
surrogate in a metadata value or the title; id missing, malformed or repeated; not a JSON object: must be
rejected), anything at all (every field missing, of any JSON type or any string), or a broken line
(truncated JSON, a broken escape, raw invalid UTF-8, deep nesting: rejected). Lines are written with
``\\u`` escapes or raw UTF-8 (lone surrogates as CESU-8 bytes), with ``\\n`` or ``\\r\\n``, a BOM or
not, blank lines between. Besides: byte-level accidents and raw garbage.

Asserted, besides ``push_and_check``'s generic properties (fuzz ``conftest.py``): a file whose lines are
known gives one decision per non-blank line, in order (accepted + rejected == lines); good lines accepted
with their ids, bad and broken ones rejected; a file with a good line is never refused as a whole.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

import pytest
from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

from nightclerk.producers.mapping import FieldMapping
from nightclerk.producers.push import PushSummary
from nightclerk.producers.rejects import Reject
from nightclerk.producers.validation import Accepted
from nightclerk.shared.errors import InputError

SECRET = "PHI-SECRET-7f3a"
FUZZ_EXAMPLES = 10_000
NAMES = ("mtsamples", "nestor", "jira", "servicenow", "pubmed", "notes")

Verdict = Literal["good", "bad", "any"]
RecordCase = tuple[Any, Verdict, str | None]
Mode = Literal["structured", "mutated", "garbage"]
Case = tuple[Mode, str, str, bytes, list[tuple[Verdict, str | None]]]
Decision = tuple[int, Accepted | Reject]
PushAndCheck = Callable[
    [bytes, str, FieldMapping, str | None], tuple[PushSummary | InputError, list[Decision]]
]
# lines that are not JSON, each with a secret inside
BROKEN_LINES = [
    b'{"text": "' + SECRET.encode() + b'", "id": "1"',  # truncated
    b'{"text": "\\x41 ' + SECRET.encode() + b'"}',  # an escape JSON does not have
    b'{"text": "\\u12 ' + SECRET.encode() + b'"}',  # a short \u escape
    b'{"text": "' + SECRET.encode() + b'\\"}',  # the closing quote escaped
    b'{"text": "tab\there ' + SECRET.encode() + b'" "x": 1}',  # a missing comma
    b"{'text': '" + SECRET.encode() + b"'}",  # Python, not JSON
    b'{"text": "' + SECRET.encode() + b'", }',  # a trailing comma
    b"[" * 100_000 + b"]" * 100_000,  # nested too deeply
    b"\x00" + SECRET.encode(),
]


@st.composite
def jsonl_cases(
    draw: st.DrawFn,
    batches: Callable[[Sequence[str]], SearchStrategy[tuple[str, list[RecordCase]]]],
    to_json: Callable[..., bytes],
    values: dict[str, SearchStrategy[Any]],
    mutate: Callable[[bytes], SearchStrategy[bytes]],
) -> Case:
    name, cases = draw(batches(NAMES))
    suffix = draw(st.sampled_from([".jsonl", ".ndjson"]))
    mode: Mode = draw(st.sampled_from(["structured"] * 7 + ["mutated", "mutated", "garbage"]))
    if mode == "garbage":
        return mode, name, suffix, draw(values["garbage"]), []
    lines: list[bytes] = []
    expected: list[tuple[Verdict, str | None]] = []
    for record, verdict, expected_id in cases:
        if draw(st.integers(0, 7)) == 0:
            lines.append(draw(st.sampled_from(BROKEN_LINES)))
            expected.append(("bad", None))
        lines.append(to_json(record, ascii_only=draw(st.booleans())))
        expected.append((verdict, expected_id))
        if draw(st.integers(0, 7)) == 0:
            lines.append(draw(st.sampled_from([b"", b"   ", b"\r", b"\t "])))  # blank: not a record
    line_end = draw(st.sampled_from([b"\n", b"\r\n"]))
    data = draw(st.sampled_from([b"", b"\xef\xbb\xbf"])) + line_end.join(lines)
    data += draw(st.sampled_from([b"", line_end]))
    if mode == "mutated":
        data = draw(mutate(data))
    return mode, name, suffix, data, expected


@pytest.mark.fuzz
def test_fuzz_jsonl(
    run_fuzz: Callable[[SearchStrategy[Any], Callable[[Any], None]], None],
    record_batches: Callable[[Sequence[str]], SearchStrategy[tuple[str, list[RecordCase]]]],
    json_mappings: dict[str, FieldMapping],
    to_json_bytes: Callable[..., bytes],
    fuzz_values: dict[str, SearchStrategy[Any]],
    mutate: Callable[[bytes], SearchStrategy[bytes]],
    push_and_check: PushAndCheck,
    verdicts: Callable[[Sequence[tuple[Verdict, str | None]], Sequence[Accepted | Reject]], None],
) -> None:
    def one_file(case: Case) -> None:
        mode, name, suffix, data, expected = case
        outcome, decisions = push_and_check(data, f"records{suffix}", json_mappings[name], None)
        if mode != "structured":
            return
        if any(verdict == "good" for verdict, _ in expected):
            assert isinstance(outcome, PushSummary), f"a file with a good line was refused: {outcome}"
        if isinstance(outcome, PushSummary):
            assert outcome.accepted + outcome.rejected == len(expected)
            verdicts(expected, [result for _, result in decisions])

    run_fuzz(jsonl_cases(record_batches, to_json_bytes, fuzz_values, mutate), one_file)
