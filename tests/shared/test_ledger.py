"""The chunk ledger on the real Redis: what it records, and which chunks a sweep finds unaccounted for."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import redis

from nightclerk.shared.ledger import ChunkLedger


@pytest.fixture
def ledger(redis_url: str, queue_name: str) -> Iterator[ChunkLedger]:
    client = redis.Redis.from_url(redis_url)
    yield ChunkLedger(client, queue_name)
    client.close()


def _nobody_holds(ids: list[str]) -> list[bool]:
    return [False] * len(ids)


def test_a_chunk_is_on_record_from_its_send_to_its_end(ledger: ChunkLedger) -> None:
    message = {"chunk_id": "c1", "documents": [{"text": "knee pain"}]}
    assert ledger.record("c1", message, "hmac-sha256:ab") == 1
    assert ledger.record("c2", {"chunk_id": "c2"}, None) == 2
    assert ledger.outstanding() == 2
    entry = ledger.entry("c1")
    assert entry is not None and (entry.message, entry.signature) == (message, "hmac-sha256:ab")
    assert ledger.begin("c1") is True and ledger.begin("not-on-record") is False
    ledger.done("c1")
    assert ledger.outstanding() == 1 and ledger.entry("c1") is None
    ledger.resent("c2")  # to the back of the line, its body kept
    entry2 = ledger.entry("c2")
    assert entry2 is not None and entry2.message == {"chunk_id": "c2"}
    assert ledger.client.zscore(ledger.keys["pushed"], "c2") == 3
    ledger.done("c2")
    ledger.resent("c2")  # a copy sent back after the chunk was finished: not put back on record
    assert ledger.outstanding() == 0


def test_a_chunk_passed_over_and_never_begun_is_lost_after_the_wait(ledger: ChunkLedger) -> None:
    for chunk_id in ("c1", "c2", "c3"):
        ledger.record(chunk_id, {"chunk_id": chunk_id}, None)
    ledger.begin("c1")
    ledger.done("c1")
    ledger.begin("c3")  # c2 left the queue before c3 and was never begun: in a worker's hands, or lost
    assert ledger.unaccounted(queue_empty=False, leased=_nobody_holds, lost_after_s=0.5) == []  # suspect now
    time.sleep(0.7)
    assert ledger.unaccounted(
        queue_empty=False, leased=lambda ids: [i == "c3" for i in ids], lost_after_s=0.5
    ) == ["c2"]  # c3 is begun and held: at work
    assert ledger.unaccounted(queue_empty=False, leased=lambda ids: [True] * len(ids), lost_after_s=0.5) == []
    ledger.begin("c2")  # it turned up after all
    assert ledger.unaccounted(queue_empty=False, leased=_nobody_holds, lost_after_s=0.5) == []


def test_chunks_still_queued_are_not_suspects_until_the_queue_is_empty(ledger: ChunkLedger) -> None:
    for chunk_id in ("c1", "c2"):
        ledger.record(chunk_id, {"chunk_id": chunk_id}, None)
    time.sleep(0.3)
    assert ledger.unaccounted(queue_empty=False, leased=_nobody_holds, lost_after_s=0.1) == []
    ledger.unaccounted(queue_empty=True, leased=_nobody_holds, lost_after_s=0.1)  # both suspect now
    time.sleep(0.3)
    assert ledger.unaccounted(queue_empty=True, leased=_nobody_holds, lost_after_s=0.1) == ["c1", "c2"]


def test_a_begun_chunk_nobody_holds_is_lost_once_it_was_due_back(ledger: ChunkLedger) -> None:
    for chunk_id in ("c1", "c2"):
        ledger.record(chunk_id, {"chunk_id": chunk_id}, None)
        ledger.begin(chunk_id)
    assert ledger.unaccounted(queue_empty=True, leased=_nobody_holds, lost_after_s=0.4) == []  # begun lately
    time.sleep(0.6)
    assert ledger.unaccounted(
        queue_empty=True, leased=lambda ids: [i == "c1" for i in ids], lost_after_s=0.4
    ) == ["c2"]
