"""Fuzzing the webhook intake (hypothesis, >= 10,000 requests): a real uvicorn server, the real Redis queue.

Generated: POST bodies for ``/v1/records/{preset}`` (``mtsamples``, ``nestor``, ``jira``, ``servicenow``,
``pubmed``): an array of records, one record, a Jira webhook's ``{"issue": ...}`` or a container
(``issues``, ``result``, ``records``, ``data``) -- records good (accepted with a known id), bad (one certain
defect: rejected) or anything at all, as the JSONL test makes them (fuzz ``conftest.py``). Bodies are
UTF-8 with ``\\u`` escapes or raw (lone surrogates as CESU-8 bytes), UTF-16 or UTF-32, sent with a
Content-Length or chunked, any Content-Type, sometimes padded past the 20,000-byte limit; the ``tasks``
parameter valid or not. Besides: bodies with byte-level accidents, raw garbage, empty bodies.

Asserted for every request: the status is 202, 413 or 422 (never 500); the response never holds the
secret; 202 lists accepted ids and rejects (index, non-empty reason), one per item of the body, exactly
the accepted documents are on the queue (checked like ``push``'s, and emptied), as many chunks as the
response says; 413 for a body over the limit and 422 for bad tasks, a body that is not JSON or holds no
record, or when every record was rejected -- with nothing enqueued; good records accepted with their ids,
bad ones rejected.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Literal

import httpx
import pytest
from hypothesis import event
from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

from nightclerk.producers.mapping import FieldMapping
from nightclerk.shared.messages import ChunkMessage
from nightclerk.shared.settings import Settings

SECRET = "PHI-SECRET-7f3a"
FUZZ_EXAMPLES = 10_000
WEBHOOK_MAX_BYTES = 20_000
TOKEN = "fuzz-token-0d9b"
PRESETS = ("mtsamples", "nestor", "jira", "servicenow", "pubmed")
CONTAINER_KEYS = ("issues", "result", "records", "data")
GOOD_TASKS = ["classify", "summarize", "classify,summarize", " classify , summarize ", "classify,,classify"]
BAD_TASKS = ["translate", "", ",", "classify,translate", "CLASSIFY", "classify;summarize"]
CONTENT_TYPES = [
    "application/json",
    "application/json; charset=utf-8",
    "text/plain",
    "",
    "application/x-www-form-urlencoded",
]

Verdict = Literal["good", "bad", "any"]
RecordCase = tuple[Any, Verdict, str | None]
QueueDrain = Callable[[FieldMapping | None], list[ChunkMessage]]


class Request:
    """One generated request and what is known about its answer."""

    def __init__(self, preset: str, body: bytes, tasks: str, cases: list[RecordCase] | None) -> None:
        self.preset = preset
        self.body = body
        self.tasks = tasks
        self.cases = cases  # the records, when the body holds exactly these
        self.chunked = False
        self.content_type = "application/json"


@pytest.fixture
def intake(
    fuzz_producer_settings: Settings, serve_intake: Callable[[Settings], str]
) -> Iterator[httpx.Client]:
    """The app on uvicorn in a thread (the test's queue, its limits); a keep-alive client with the token."""
    settings = Settings.model_validate(
        fuzz_producer_settings.model_dump() | {"webhook_token": TOKEN, "webhook_max_bytes": WEBHOOK_MAX_BYTES}
    )
    with httpx.Client(
        base_url=serve_intake(settings), headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30
    ) as client:
        yield client


def _encoded(text: str, encoding: str) -> bytes | None:
    try:
        return text.encode(encoding)
    except UnicodeEncodeError:  # a lone surrogate
        return None


@st.composite
def requests(
    draw: st.DrawFn,
    batches: Callable[[Sequence[str]], SearchStrategy[tuple[str, list[RecordCase]]]],
    to_json: Callable[..., bytes],
    values: dict[str, SearchStrategy[Any]],
    mutate: Callable[[bytes], SearchStrategy[bytes]],
) -> Request:
    preset, cases = draw(batches(PRESETS))
    tasks = draw(st.sampled_from(GOOD_TASKS)) if draw(st.integers(0, 9)) else draw(st.sampled_from(BAD_TASKS))
    records = [record for record, _, _ in cases]
    shape = draw(st.sampled_from(["array", "array", "array", "single", "issue", "container"]))
    if shape in ("single", "issue") and len(cases) == 1 and isinstance(records[0], dict):
        value: Any = records[0] if shape == "single" else {"issue": records[0]}
    elif shape == "container":
        value = {draw(st.sampled_from(CONTAINER_KEYS)): records, "total": len(records)}
    else:
        value = records
    encoding = draw(st.sampled_from(["escaped", "escaped", "raw", "utf-16", "utf-32"]))
    body: bytes | None = None
    if encoding in ("utf-16", "utf-32"):
        body = _encoded(json.dumps(value, ensure_ascii=False), encoding)
    if body is None:
        body = to_json(value, ascii_only=encoding != "raw")
    request = Request(preset, body, tasks, cases)
    mode = draw(st.sampled_from(["structured"] * 8 + ["oversized", "mutated", "garbage"]))
    if mode == "oversized":
        request.body += b" " * (
            WEBHOOK_MAX_BYTES + 1 - len(request.body)
        )  # JSON whitespace: still valid JSON
    elif mode == "mutated":
        request.body, request.cases = draw(mutate(request.body)), None
    elif mode == "garbage":
        request.body, request.cases = draw(st.one_of(values["garbage"], st.just(b""))), None
    request.chunked = draw(st.booleans())
    request.content_type = draw(st.sampled_from(CONTENT_TYPES))
    return request


def _post(client: httpx.Client, request: Request) -> httpx.Response:
    headers = {"Content-Type": request.content_type} if request.content_type else {}
    url = f"/v1/records/{request.preset}"
    params = {"tasks": request.tasks}
    if request.chunked:  # no Content-Length: the limit is checked as the body streams in
        body = request.body
        parts = [body[i : i + 4096] for i in range(0, len(body), 4096)] or [b""]
        return client.post(url, params=params, content=iter(parts), headers=headers)
    return client.post(url, params=params, content=request.body, headers=headers)


def _decodes(body: bytes) -> bool:
    try:
        json.loads(body)
    except (ValueError, RecursionError):
        return False
    return True


@pytest.mark.fuzz
def test_fuzz_webhook(
    run_fuzz: Callable[[SearchStrategy[Any], Callable[[Any], None]], None],
    record_batches: Callable[[Sequence[str]], SearchStrategy[tuple[str, list[RecordCase]]]],
    json_mappings: dict[str, FieldMapping],
    to_json_bytes: Callable[..., bytes],
    fuzz_values: dict[str, SearchStrategy[Any]],
    mutate: Callable[[bytes], SearchStrategy[bytes]],
    intake: httpx.Client,
    drain_queue: QueueDrain,
    no_secret_in_output: None,
    record_property: Callable[[str, object], None],
) -> None:
    tally: Counter[str] = Counter()

    def one_request(request: Request) -> None:
        response = _post(intake, request)
        chunks = drain_queue(json_mappings[request.preset])  # first: a failed example leaves nothing behind
        queued = [doc.id for chunk in chunks for doc in chunk.documents]
        status = response.status_code
        event(f"status {status}")
        tally.update(
            {f"status {status}": 1, "documents enqueued": len(queued), "chunks enqueued": len(chunks)}
        )
        assert status in (202, 413, 422), f"status {status}: {response.text[:500]}"
        assert SECRET not in response.text, f"the secret in a {status} response"
        answer = response.json()
        if len(request.body) > WEBHOOK_MAX_BYTES:
            assert status == 413, "a body over the limit was taken"
        elif request.tasks not in GOOD_TASKS:
            assert status == 422 and "task" in answer["detail"]
        elif request.cases is not None and not _decodes(request.body):
            assert status == 422 and answer["detail"].startswith("body is not valid JSON")
        elif request.cases is not None and not request.cases:
            assert status == 422 and "non-empty array" in answer["detail"]
        if status != 202:
            assert queued == [], f"a {status} answer left chunks on the queue"
            if "detail" in answer:
                assert isinstance(answer["detail"], str) and answer["detail"].strip()
                return
            assert answer["accepted"] == [] and answer["rejected"] and answer["chunks"] == 0
        else:
            assert answer["accepted"], "202 without an accepted record"
        assert set(answer) == {"accepted", "rejected", "chunks"}
        rejected = {item["index"]: item for item in answer["rejected"]}
        assert len(rejected) == len(answer["rejected"]), "an index rejected twice"
        for item in answer["rejected"]:
            assert isinstance(item["reason"], str) and item["reason"].strip(), "a reject without a reason"
        assert queued == answer["accepted"], "the queue does not hold exactly the accepted documents"
        assert answer["chunks"] == len(chunks)
        if request.cases is None:
            return
        total = len(answer["accepted"]) + len(answer["rejected"])
        assert total == len(request.cases), f"{len(request.cases)} records sent, {total} answered"
        assert set(rejected) <= set(range(total))
        accepted = iter(answer["accepted"])
        for index, (_, verdict, expected_id) in enumerate(request.cases):
            if index in rejected:
                assert verdict != "good", f"good record {index} rejected: {rejected[index]['reason']}"
            else:
                document_id = next(accepted)
                assert verdict != "bad", f"bad record {index} accepted as {document_id}"
                assert verdict != "good" or document_id == expected_id
        if any(verdict == "good" for _, verdict, _ in request.cases):
            assert status == 202

    run_fuzz(requests(record_batches, to_json_bytes, fuzz_values, mutate), one_request)
    record_property("outcomes", dict(sorted(tally.items())))
