"""Shared pieces of the intake fuzz tests (``-m fuzz``): the hypothesis profile, small limits, value
strategies, the JSON record generator of the JSONL and webhook tests, and the per-example check of a real
push into the test's own Redis queue (db 11: ``producer_redis`` and ``producer_settings`` of
``tests/producers/conftest.py``; messages read with ``decode_message`` of ``tests/conftest.py``).

Test modules cannot import this file (``--import-mode=importlib``), so everything they use is a fixture.

What one example of a file format goes through (``push_and_check``):

* the bytes are written to a file and pushed with the production ``push_files`` (one ``Enqueuer`` shared
  by all examples) into the real Redis queue; the validator ``push_files`` builds is a subclass that only
  notes each decision, so the test knows which record (by line or item number) was accepted or rejected;
* an :class:`InputError` (a whole file that cannot be used) must carry a message without the secret and
  leave nothing on the queue; any other exception fails the example;
* every reject has a non-empty reason without the secret, the rejects file says the same, and the
  summary's counts are the decisions' counts;
* the queue is read and emptied (with the queue's own ``{queue}:...`` keys: the producers' chunk ledger
  holds every chunk's body): every message is a JSON Celery message for the chunk task whose argument
  validates as a :class:`ChunkMessage` (``extra="forbid"``), within the chunk limits, each document valid
  on its own (the mapping's kind and source, text non-empty, valid UTF-8 and within the limit, the id on
  the wire the one its fields derive); the enqueued documents are exactly the accepted ones, in order.

The secret marker goes into generated text, titles and metadata values -- never into ids, which reasons
show by design. It must not appear in any reason, InputError message, rejects file, message header, or
the output and log records captured while the test ran.

Under ``CI=true`` the profile is derandomized (the same examples on every run); otherwise it is random.
Each test records its example count and what the examples came to as ``examples`` and ``outcomes``
properties (``--junitxml``).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import pytest
import redis
from hypothesis import HealthCheck, event, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

from nightclerk.producers import push as push_module
from nightclerk.producers.chunking import AnyDocument, chunk_json_bytes, document_json_bytes, document_work
from nightclerk.producers.enqueue import Enqueuer
from nightclerk.producers.mapping import FieldMapping, load_preset
from nightclerk.producers.push import PushSummary, push_files
from nightclerk.producers.readers import RecordError
from nightclerk.producers.rejects import Reject
from nightclerk.producers.validation import Accepted, Validator
from nightclerk.shared.documents import content_id, has_lone_surrogate
from nightclerk.shared.errors import InputError
from nightclerk.shared.messages import PROCESS_CHUNK_TASK, ChunkMessage
from nightclerk.shared.settings import Settings

SECRET = "PHI-SECRET-7f3a"
FUZZ_EXAMPLES = 10_000
# small limits: "too big" inputs are cheap to generate, and chunks fill up within one example
CHUNK_DOCS = 3
CHUNK_MAX_BYTES = 10_000
MAX_TEXT_BYTES = 3_000
WEBHOOK_MAX_BYTES = 20_000

hypothesis_settings.register_profile(
    "nightclerk-fuzz",
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)
# under CI=true the same examples on every run: a failure there belongs to the change, not to the dice
hypothesis_settings.register_profile(
    "nightclerk-fuzz-ci", parent=hypothesis_settings.get_profile("nightclerk-fuzz"), derandomize=True
)
PROFILE = "nightclerk-fuzz-ci" if os.environ.get("CI") == "true" else "nightclerk-fuzz"

Verdict = Literal["good", "bad", "any"]
# one generated record: its value as it will be serialized, what it must come to, and (good) its id
RecordCase = tuple[Any, Verdict, str | None]
Decision = tuple[int, Accepted | Reject]
PushOutcome = tuple[PushSummary | InputError, list[Decision]]
PushAndCheck = Callable[[bytes, str, FieldMapping, str | None], PushOutcome]
QueueDrain = Callable[[FieldMapping | None], list[ChunkMessage]]


# --- values ----------------------------------------------------------------------------------------------

PLAIN_CHARS = st.characters(exclude_categories=["Cs"])  # any code point but a surrogate: NUL, controls too
_SURROGATE = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)
_ODD = [
    "",
    " ",
    "\t\n ",
    "\x00",
    "\r\n",
    "\u2028",
    "\ufeff",
    "\u200b",
    "NA",
    "null",
    "-",
    "..",
    "\\",
    '"',
    "'",
]
_BIG_CHARS = ["x", "é", "€", "😀", "\x00", " "]


def _with_secret(before: str, after: str) -> str:
    return f"{before}{SECRET}{after}"


def _repeat(char: str, count: int) -> str:
    return char * count + SECRET


def _surrounding(before: str, surrogate: str, after: str) -> str:
    return before + surrogate + SECRET + after


# pieces of text, cheap to draw: scripts, emoji with joiners, bidi and zero-width marks, NUL and other
# controls, line and paragraph separators, quotes, markup, escapes -- and a little free text
_FRAGMENTS = [
    "", "a", "Seen in clinic today.", "é", "Ünïcödé", "日本語のテキスト", "עברית", "العربية", "😀",
    "\U0001f469\u200d\U0001f469\u200d\U0001f467", "\U0001d518\U0001d52b\U0001d526", "\u202e", "\u200b",
    "\ufeff", "\x00", "\t", "\r\n", "\n\n", "\r", "\u2028", "\x1c\x1d", "\x7f", "\x85", "'\"<>&", "\\",
    "\\F\\", "{}", "[]", ",", ";", "NA", "  ", "\xa0", "\ufb01", "\u0130",
]  # fmt: skip
TEXT_BITS: SearchStrategy[str] = st.one_of(st.sampled_from(_FRAGMENTS), st.text(PLAIN_CHARS, max_size=6))
# valid document text: non-empty, valid UTF-8, far below the size limit, holding the secret
GOOD_TEXT: SearchStrategy[str] = st.builds(_with_secret, TEXT_BITS, TEXT_BITS)
# over MAX_TEXT_BYTES, or near it: one character repeated, the secret at the end
HUGE_TEXT: SearchStrategy[str] = st.builds(
    _repeat, st.sampled_from(_BIG_CHARS), st.integers(MAX_TEXT_BYTES // 4 - 50, MAX_TEXT_BYTES + 50)
)
# a lone surrogate: an unpaired JSON \u escape, or an undecodable byte read with surrogateescape
SURROGATE_TEXT: SearchStrategy[str] = st.builds(_surrounding, TEXT_BITS, _SURROGATE, TEXT_BITS)
# any string a text field may hold
MESSY_TEXT: SearchStrategy[str] = st.one_of(
    GOOD_TEXT, st.sampled_from(_ODD), TEXT_BITS, HUGE_TEXT, SURROGATE_TEXT
)
# strings for ids and keys: never the secret
MESSY_PLAIN: SearchStrategy[str] = st.one_of(
    st.sampled_from([*_ODD, "a b", "-lead", ".dot", "x" * 201, "ok-1", "A7", "é", "id/1#2@3+4"]),
    st.text(PLAIN_CHARS, max_size=6),
    st.text(st.sampled_from("abcXYZ019-_./#@+ "), min_size=1, max_size=8),
)


# json_bytes writes this string as an integer of 4,400 digits: valid JSON that Python's int() refuses
BIG_INTEGER = "__fuzz_big_integer__"
_BIG_INTEGER_JSON = b'"' + BIG_INTEGER.encode() + b'"'
_SPECIAL_NUMBERS: list[Any] = [BIG_INTEGER, 2**63, 2**64 + 1, -(10**300), 1e308, -0.0, 5e-324, 0]


def _messy_json(text: SearchStrategy[str]) -> SearchStrategy[Any]:
    """Any JSON value with strings from ``text``: wrong types where a string belongs, nesting, big numbers."""
    numbers = st.one_of(
        st.integers(-(2**70), 2**70), st.floats(allow_nan=False), st.sampled_from(_SPECIAL_NUMBERS)
    )
    scalars = st.one_of(text, st.none(), st.booleans(), numbers)
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
        max_leaves=4,
    )


MESSY_JSON: SearchStrategy[Any] = _messy_json(MESSY_TEXT)
MESSY_JSON_ID: SearchStrategy[Any] = _messy_json(MESSY_PLAIN)
NOT_AN_OBJECT: SearchStrategy[Any] = MESSY_JSON.filter(lambda value: not isinstance(value, dict))


# --- JSON records for the presets (JSONL files, webhook bodies) ------------------------------------------

JSON_MAPPINGS: dict[str, FieldMapping] = {
    **{name: load_preset(name) for name in ("mtsamples", "nestor", "jira", "servicenow", "pubmed")},
    # no id at all: the document id is a content hash of the text
    "notes": FieldMapping(kind="ehr_note", source="notes", text_field="body", metadata_fields=["dept"]),
}
_CONTAINER_KEYS = ("issues", "result", "records", "data", "issue")  # readers.records_in looks into these


def _put(record: dict[str, Any], path: str, value: Any) -> None:
    """Set ``record`` at a dotted path (``fields.summary``), making the objects on the way."""
    *parents, last = path.split(".")
    target = record
    for part in parents:
        child = target.get(part)
        if not isinstance(child, dict):
            child = target[part] = {}
        target = child
    target[last] = value


def _get(record: Any, path: str) -> Any:
    for part in path.split("."):
        record = record.get(part) if isinstance(record, dict) else None
    return record


def _drop(record: dict[str, Any], path: str) -> None:
    *parents, last = path.split(".")
    target = _get(record, ".".join(parents)) if parents else record
    if isinstance(target, dict):
        target.pop(last, None)


# strategies built once (a strategy built inside a composite is validated again on every draw)
_GOOD_METADATA = st.sampled_from(
    [
        f"3B {SECRET}",
        SECRET,
        f"Cardiology {SECRET} é",
        "",
        "0",
        7,
        1999,
        2.5,
        True,
        {"n": SECRET},
        ["a", SECRET],
    ]
)
_LOCAL_IDS = st.sampled_from(["a", "B7", "x_y", "q/1#2"])
_DAYS = st.integers(10, 28)
_BAD_TEXTS = st.one_of(
    st.sampled_from(["", " ", "\t\r\n", None, 7, 1.5, True, ["a", SECRET], {"t": SECRET}]),
    st.builds(lambda s: SECRET + s, _SURROGATE),
    st.builds(lambda n: "y" * n + SECRET, st.integers(MAX_TEXT_BYTES + 1, MAX_TEXT_BYTES + 99)),
)
_BAD_UTF8 = st.sampled_from(["\ud800", "a\udcff"])
_KINDS = st.sampled_from(["good", "good", "bad", "bad", "any", "any", "any"])
_EXTRA_KEYS = st.text(st.sampled_from("xyz_."), min_size=1, max_size=4)


def _id_paths(mapping: FieldMapping) -> list[str]:
    return [mapping.id_field] if mapping.id_field else mapping.template_columns()


@st.composite
def _good_json_record(draw: st.DrawFn, mapping: FieldMapping, index: int) -> RecordCase:
    record: dict[str, Any] = {}
    text = draw(GOOD_TEXT) + f" #{index}"  # distinct texts: distinct content hashes
    _put(record, mapping.text_field, text)
    for name in mapping.more_text_fields:
        if draw(st.booleans()):
            _put(record, name, draw(GOOD_TEXT))
    for name in mapping.metadata_fields:
        _put(record, name, draw(_GOOD_METADATA))
    if mapping.title_field:
        _put(record, mapping.title_field, draw(GOOD_TEXT))
    if mapping.id_field:
        local = f"good-{index}.{draw(_LOCAL_IDS)}"
        _put(record, mapping.id_field, draw(st.sampled_from([local, f"  {local} "])))
        expected = f"{mapping.source}:{local}"
    elif mapping.id_template:  # nestor: {Asset}-{BscStartDate}-{_seq}
        asset, date = f"gA{index}", f"2020-01-{draw(_DAYS)}"
        _put(record, "Asset", asset)
        _put(record, "BscStartDate", date)
        expected = f"{mapping.source}:{asset}-{date}-1"
    else:
        expected = f"{mapping.source}:{content_id(text)}"
    return record, "good", expected


@st.composite
def _bad_json_record(
    draw: st.DrawFn, mapping: FieldMapping, index: int, earlier_good: Sequence[dict[str, Any]]
) -> RecordCase:
    """A record that must be rejected: one certain defect in an otherwise good record."""
    record, _, _ = draw(_good_json_record(mapping, index))
    defects = ["text", "metadata", *(["id"] if _id_paths(mapping) else [])]
    defects += ["title"] if mapping.title_field else []
    if earlier_good and not mapping.id_template:  # a repeated template row is a new {_seq}, not a duplicate
        defects.append("duplicate")
    defect = draw(st.sampled_from(defects))
    if defect == "text":
        for name in mapping.more_text_fields:  # an empty summary with a description is a valid text
            _drop(record, name)
        bad_text = draw(_BAD_TEXTS)
        if (bad_text == "" or bad_text is None) and draw(st.booleans()):
            _drop(record, mapping.text_field)
        else:
            _put(record, mapping.text_field, bad_text)
    elif defect == "metadata":
        name = draw(st.sampled_from(mapping.metadata_fields))
        bad = draw(_BAD_UTF8)
        _put(record, name, bad if name in _id_paths(mapping) else bad + SECRET)  # nestor's Asset is both
    elif defect == "title":
        _put(record, mapping.title_field or "", SECRET + "\udc80")
    elif defect == "id":
        paths = _id_paths(mapping)
        path = draw(st.sampled_from(paths))
        choices: list[Any] = ["", "  ", None, "a b", "x" * 201, ["k"], {"k": 1}, "é"]
        if path == paths[0]:  # "-x" inside a template ("gA1--x-1") is a valid id
            choices += ["-x", ".x"]
        bad_id = draw(st.sampled_from(choices))
        if (bad_id == "" or bad_id is None) and draw(st.booleans()):
            _drop(record, path)
        else:
            _put(record, path, bad_id)
    else:  # the id (or, without one, the text) of an earlier good record
        first = draw(st.sampled_from(list(earlier_good)))
        for path in _id_paths(mapping) or [mapping.text_field]:
            _put(record, path, _get(first, path))
    return record, "bad", None


@st.composite
def _any_json_record(draw: st.DrawFn, mapping: FieldMapping, earlier: Sequence[Any]) -> RecordCase:
    """Whatever a source might send: each mapped field missing, of any type or any string; extra keys."""
    if draw(st.integers(0, 15)) == 0:
        return draw(NOT_AN_OBJECT), "bad", None
    record: dict[str, Any] = {}
    paths = [mapping.text_field, *mapping.more_text_fields, *mapping.metadata_fields, *_id_paths(mapping)]
    paths += [mapping.title_field] if mapping.title_field else []
    for path in dict.fromkeys(paths):
        choice = draw(st.integers(0, 9))
        is_id = path in _id_paths(mapping)
        if choice == 0:
            continue  # missing
        if choice == 1 and is_id and earlier:  # an earlier record's id: maybe a duplicate
            _put(record, path, _get(draw(st.sampled_from(list(earlier))), path))
        elif choice <= 2:
            _put(record, path, draw(MESSY_JSON_ID if is_id else MESSY_JSON))
        else:
            _put(record, path, draw(MESSY_PLAIN if is_id else MESSY_TEXT))
    for _ in range(draw(st.integers(0, 2))):
        key = draw(_EXTRA_KEYS)
        if key not in record and key.split(".")[0] not in _CONTAINER_KEYS:
            record[key] = draw(MESSY_JSON)
    return record, "any", None


@st.composite
def json_record_batch(
    draw: st.DrawFn, names: Sequence[str], max_records: int = 5
) -> tuple[str, list[RecordCase]]:
    """A mapping name (``JSON_MAPPINGS``) and records for it: good ones (accepted with a known id), bad
    ones (one certain defect: rejected) and anything at all."""
    name = draw(st.sampled_from(list(names)))
    mapping = JSON_MAPPINGS[name]
    cases: list[RecordCase] = []
    for index in range(draw(st.integers(0, max_records))):
        goods = [record for record, verdict, _ in cases if verdict == "good"]
        kind = draw(_KINDS)
        if kind == "good":
            cases.append(draw(_good_json_record(mapping, index)))
        elif kind == "bad":
            cases.append(draw(_bad_json_record(mapping, index, goods)))
        else:
            cases.append(draw(_any_json_record(mapping, [record for record, _, _ in cases])))
    return name, cases


def json_bytes(value: Any, *, ascii_only: bool) -> bytes:
    """``value`` as JSON: lone surrogates become unpaired ``\\u`` escapes, or CESU-8 bytes (invalid UTF-8);
    ``BIG_INTEGER`` becomes an integer of 4,400 digits."""
    data = json.dumps(value, ensure_ascii=ascii_only).encode("utf-8", errors="surrogatepass")
    return data.replace(_BIG_INTEGER_JSON, b"9" * 4_400)


# --- bytes -------------------------------------------------------------------------------------------------


@st.composite
def mutated_bytes(draw: st.DrawFn, data: bytes) -> bytes:
    """``data`` with 1-3 byte-level accidents: truncation, a cut-out span, inserted or flipped bytes, NUL,
    invalid UTF-8."""
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 3))):
        what = draw(st.sampled_from(["truncate", "cut", "insert", "flip", "nul", "invalid-utf8"]))
        at = draw(st.integers(0, len(out)))
        if what == "truncate":
            del out[at:]
        elif what == "cut":
            del out[at : at + draw(st.integers(1, 40))]
        elif what == "insert":
            out[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif what == "flip" and at < len(out):
            out[at] ^= 1 << draw(st.integers(0, 7))
        elif what == "nul":
            out[at:at] = b"\x00"
        else:
            out[at:at] = draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xe2\x82", b"\x80\x80"]))
    return bytes(out)


def _joined(head: bytes, tail: bytes) -> bytes:
    return head + tail


# raw garbage: random bytes, sometimes behind a plausible start
GARBAGE: SearchStrategy[bytes] = st.one_of(
    st.binary(max_size=300),
    st.builds(
        _joined,
        st.sampled_from([b"\xef\xbb\xbf", b"{", b"<?xml", b"MSH|^~\\&|", b"\x0b"]),
        st.binary(max_size=200),
    ),
)


# --- checks ------------------------------------------------------------------------------------------------


def check_reason(reason: str) -> None:
    assert isinstance(reason, str) and reason.strip(), "a reject without a reason"
    assert SECRET not in reason, f"a reason quotes the text: {reason!r}"


def check_verdicts(cases: Sequence[tuple[Verdict, str | None]], results: Sequence[Accepted | Reject]) -> None:
    """Record i came to results[i]: good ones accepted with their id, bad ones rejected."""
    assert len(results) == len(cases), f"{len(cases)} records produced, {len(results)} decided"
    for index, ((verdict, expected_id), result) in enumerate(zip(cases, results, strict=True)):
        if verdict == "good":
            why = result.reason if isinstance(result, Reject) else ""
            assert isinstance(result, Accepted), f"good record {index} rejected: {why}"
            assert result.document.id == expected_id
        elif verdict == "bad":
            assert isinstance(result, Reject), f"bad record {index} accepted: {result.document.id}"


def _check_document(doc: AnyDocument, wire_id: str, mapping: FieldMapping | None, settings: Settings) -> None:
    """One enqueued document, on its own."""
    assert wire_id == doc.id, "the id on the queue is not the one the document's fields derive"
    assert doc.text.strip() and not has_lone_surrogate(doc.text)
    assert len(doc.text.encode("utf-8")) <= settings.max_text_bytes
    assert document_json_bytes(doc) <= settings.chunk_max_bytes
    assert not any(has_lone_surrogate(k) or has_lone_surrogate(v) for k, v in doc.metadata.items())
    if mapping is not None:
        assert (doc.source, doc.kind) == (mapping.source, mapping.kind)
        assert set(doc.metadata) <= {*mapping.metadata_fields, "title"}


def _recording_validator(sink: list[Decision]) -> type[Validator]:
    class RecordingValidator(Validator):
        """The production validator; each decision is also noted for the test."""

        def validate(self, file: str, line: int, record: dict[str, Any] | RecordError) -> Accepted | Reject:
            result = super().validate(file, line, record)
            sink.append((line, result))
            return result

    return RecordingValidator


# --- fixtures ----------------------------------------------------------------------------------------------


@pytest.fixture
def run_fuzz(
    record_property: Callable[[str, object], None],
) -> Callable[[SearchStrategy[Any], Callable[[Any], None]], None]:
    """``run_fuzz(strategy, check)``: ``check`` on the profile's examples of ``strategy`` (10,000, no
    deadline, no database; derandomized under CI=true); how many ran is recorded as ``examples``, and must
    be 10,000."""

    def run(strategy: SearchStrategy[Any], check: Callable[[Any], None]) -> None:
        count = 0

        @hypothesis_settings(hypothesis_settings.get_profile(PROFILE))
        @given(case=strategy)
        def one(case: Any) -> None:
            nonlocal count
            count += 1
            check(case)

        one()
        record_property("examples", count)
        assert count >= FUZZ_EXAMPLES, f"only {count} examples ran"

    return run


@pytest.fixture
def fuzz_producer_settings(producer_settings: Settings) -> Settings:
    """The test's own queue on db 11, with small chunk and text limits."""
    limits = {"chunk_docs": CHUNK_DOCS, "chunk_max_bytes": CHUNK_MAX_BYTES, "max_text_bytes": MAX_TEXT_BYTES}
    return Settings.model_validate(producer_settings.model_dump() | limits)


@pytest.fixture
def fuzz_values() -> dict[str, SearchStrategy[Any]]:
    """The shared value strategies, by name (see the constants above)."""
    return {
        "good_text": GOOD_TEXT,
        "huge_text": HUGE_TEXT,
        "surrogate_text": SURROGATE_TEXT,
        "messy_text": MESSY_TEXT,
        "messy_plain": MESSY_PLAIN,
        "messy_json": MESSY_JSON,
        "plain_chars": PLAIN_CHARS,
        "garbage": GARBAGE,
    }


@pytest.fixture
def mutate() -> Callable[[bytes], SearchStrategy[bytes]]:
    return mutated_bytes


@pytest.fixture
def record_batches() -> Callable[[Sequence[str]], SearchStrategy[tuple[str, list[RecordCase]]]]:
    """``record_batches(names)``: a mapping name and its generated records (``json_record_batch``)."""
    return json_record_batch


@pytest.fixture
def json_mappings() -> dict[str, FieldMapping]:
    return dict(JSON_MAPPINGS)


@pytest.fixture
def to_json_bytes() -> Callable[..., bytes]:
    return json_bytes


@pytest.fixture
def verdicts() -> Callable[[Sequence[tuple[Verdict, str | None]], Sequence[Accepted | Reject]], None]:
    return check_verdicts


@pytest.fixture
def reason_check() -> Callable[[str], None]:
    return check_reason


@pytest.fixture
def drain_queue(
    producer_redis: redis.Redis,
    fuzz_producer_settings: Settings,
    decode_message: Callable[[bytes | str], tuple[dict[str, Any], list[Any]]],
) -> QueueDrain:
    """Read and empty the test's queue, checking every message and each document in it on its own; the
    queue's own keys (``{queue}:...``: the producers' chunk ledger holds every chunk's body) go too, so that
    Redis does not grow over 10,000 examples."""
    settings = fuzz_producer_settings

    def drain(mapping: FieldMapping | None) -> list[ChunkMessage]:
        with producer_redis.pipeline(transaction=True) as pipe:
            pipe.lrange(settings.queue, 0, -1)
            pipe.delete(settings.queue)
            raws, _ = pipe.execute()
        bookkeeping = list(producer_redis.scan_iter(match=f"{settings.queue}:*", count=1_000))
        if bookkeeping:
            producer_redis.delete(*bookkeeping)
        chunks = []
        for raw in reversed(raws):  # LPUSH: newest first
            envelope, (args, kwargs, _) = decode_message(
                raw
            )  # JSON only: the decoder checks the content type
            assert envelope["headers"]["task"] == PROCESS_CHUNK_TASK
            assert SECRET not in json.dumps(envelope["headers"]), "document text in the message headers"
            assert set(kwargs) <= {"signature"} and len(args) == 1  # signed when a signing key is set
            chunk = ChunkMessage.model_validate(args[0])  # extra="forbid": nothing unexpected on the wire
            count = len(chunk.documents)
            assert 1 <= count <= max(settings.chunk_docs, settings.chunk_max_docs)
            if count > settings.chunk_docs:  # short documents of a classify-only push share a chunk
                assert chunk.tasks == ["classify"]
                assert sum(document_work(doc) for doc in chunk.documents) < settings.chunk_docs + 1
            assert chunk_json_bytes(chunk) <= settings.chunk_max_bytes
            for doc, wire in zip(chunk.documents, args[0]["documents"], strict=True):
                _check_document(doc, wire["id"], mapping, settings)
            chunks.append(chunk)
        return chunks

    return drain


@pytest.fixture
def no_secret_in_output(
    capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> Iterator[None]:
    """After the test: nothing it printed (structlog) or logged (the logging module) holds the secret."""
    yield
    out, err = capfd.readouterr()
    assert SECRET not in out + err, "the secret reached the output"
    assert SECRET not in caplog.text, "the secret reached the logs"


@pytest.fixture
def push_and_check(
    producer_redis: redis.Redis,
    fuzz_producer_settings: Settings,
    drain_queue: QueueDrain,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    no_secret_in_output: None,
    record_property: Callable[[str, object], None],
) -> Iterator[PushAndCheck]:
    """``push_and_check(data, file_name, mapping, fmt)``: push one file for real, check the generic
    properties (module docstring); returns the summary (or the InputError) and the decisions in order.
    What the files came to is recorded as the test's ``outcomes`` property (``--junitxml``)."""
    settings = fuzz_producer_settings
    decisions: list[Decision] = []
    tally: Counter[str] = Counter()
    monkeypatch.setattr(push_module, "Validator", _recording_validator(decisions))
    rejects_path = tmp_path / "rejects.jsonl"
    enqueuer = Enqueuer(settings)

    def push(data: bytes, name: str, mapping: FieldMapping, fmt: str | None) -> PushOutcome:
        decisions.clear()
        producer_redis.delete(
            settings.queue
        )  # what a failed example may have left; a passing one leaves nothing
        path = tmp_path / name
        path.write_bytes(data)
        rejects_path.unlink(missing_ok=True)
        try:
            summary = push_files(
                [path], mapping, ["classify"], settings, rejects_path=rejects_path, progress=False,
                fmt=fmt, enqueuer=enqueuer,
            )  # fmt: skip
        except InputError as exc:
            message = str(exc)
            assert message.strip(), "an InputError without a message"
            assert SECRET not in message, f"an InputError quotes the text: {message!r}"
            assert not decisions, "records were validated before the file was refused"
            assert drain_queue(mapping) == [], "a refused file left chunks on the queue"
            event("file refused (InputError)")
            tally["files refused (InputError)"] += 1
            return exc, []
        found = list(decisions)
        accepted = {
            result.document.id: result.document for _, result in found if isinstance(result, Accepted)
        }
        rejected = [result for _, result in found if isinstance(result, Reject)]
        assert len(accepted) == len(found) - len(rejected), "one id accepted twice in a push"
        assert (summary.accepted, summary.rejected) == (len(accepted), len(rejected))
        for reject in rejected:
            check_reason(reject.reason)
        written = rejects_path.read_text(encoding="ascii")
        assert SECRET not in written
        assert [json.loads(line)["reason"] for line in written.splitlines()] == [r.reason for r in rejected]
        chunks = drain_queue(mapping)
        assert summary.chunks == len(chunks)
        queued = [doc for chunk in chunks for doc in chunk.documents]
        assert [doc.id for doc in queued] == list(accepted), "the queue does not hold the accepted documents"
        assert all(doc == accepted[doc.id] for doc in queued), "an enqueued document is not the accepted one"
        outcome = (
            "files with accepted records" if accepted else "files all rejected" if rejected else "no records"
        )
        event(outcome)
        tally.update({outcome: 1, "records accepted": len(accepted), "records rejected": len(rejected)})
        tally["chunks enqueued"] += len(chunks)
        return summary, found

    yield push
    enqueuer.close()
    record_property("outcomes", dict(sorted(tally.items())))
