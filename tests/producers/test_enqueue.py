from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from nightclerk.producers.enqueue import Enqueuer, EnqueuerPool
from nightclerk.shared.documents import EhrNote
from nightclerk.shared.errors import BrokerUnavailable
from nightclerk.shared.messages import ChunkMessage
from nightclerk.shared.settings import Settings
from nightclerk.shared.signing import verify

SECRET = "PHI-SECRET-7f3a"


def test_a_chunk_arrives_as_a_json_celery_message(
    producer_settings: Settings,
    queued_raw: Callable[[], list[tuple[dict[str, Any], list[Any]]]],
    queued: Callable[[], list[ChunkMessage]],
) -> None:
    chunk = ChunkMessage(tasks=["classify"], documents=[EhrNote(source="t", source_id="1", text=SECRET)])
    with Enqueuer(producer_settings) as enqueuer:
        enqueuer.check()
        assert enqueuer.send(chunk) == chunk.chunk_id
    [(envelope, _)] = queued_raw()
    headers = envelope["headers"]
    assert headers["id"] == chunk.chunk_id
    assert envelope["properties"]["delivery_info"]["routing_key"] == producer_settings.queue
    # the argument repr Celery keeps in the headers (and shows in logs and events) names the chunk only
    assert SECRET not in headers["argsrepr"]
    assert headers["argsrepr"] == f"[<chunk {chunk.chunk_id}: 1 ehr_note documents>]"
    [received] = queued()
    assert received == chunk


def test_no_broker_is_a_one_line_error() -> None:
    settings = Settings(redis_url="redis://127.0.0.1:1/0", queue="nowhere")
    with Enqueuer(settings) as enqueuer, pytest.raises(BrokerUnavailable) as caught:
        enqueuer.check()
    message = str(caught.value)
    assert "no Redis answers at redis://127.0.0.1:1/0" in message
    assert "\n" not in message


def test_with_a_signing_key_every_chunk_carries_its_signature(
    producer_settings: Settings, queued_raw: Callable[[], list[tuple[dict[str, Any], list[Any]]]]
) -> None:
    settings = producer_settings.with_overrides(message_signing_key="k1")
    chunk = ChunkMessage(tasks=["classify"], documents=[EhrNote(source="t", source_id="1", text=SECRET)])
    with Enqueuer(settings) as enqueuer:
        enqueuer.send(chunk)
    [(envelope, (args, kwargs, _))] = queued_raw()
    assert settings.message_signing_key is not None
    verify(settings.message_signing_key, args[0], kwargs["signature"])
    assert envelope["headers"]["kwargsrepr"] == "{signed}"  # the signature is not repeated in the headers


def test_a_send_while_redis_is_away_is_retried_then_given_up_in_about_publish_retry_s() -> None:
    settings = Settings(redis_url="redis://127.0.0.1:1/0", queue="nowhere", publish_retry_s=3)
    chunk = ChunkMessage(tasks=["classify"], documents=[EhrNote(source="t", source_id="1", text=SECRET)])
    started = time.monotonic()
    with Enqueuer(settings) as enqueuer, pytest.raises(BrokerUnavailable) as caught:
        enqueuer.send(chunk)
    assert 3 <= time.monotonic() - started < 30
    assert SECRET not in str(caught.value) and "queue nowhere at redis://127.0.0.1:1/0" in str(caught.value)


def test_the_pool_reuses_an_enqueuer_across_threads_and_makes_one_more_only_when_lent_at_once(
    producer_settings: Settings, queued: Callable[[], list[ChunkMessage]]
) -> None:
    pool = EnqueuerPool(producer_settings)
    lent: list[Enqueuer] = []

    def send_one(number: int) -> None:  # on a thread of its own, as a request on the webhook's threadpool
        chunk = ChunkMessage(
            tasks=["classify"], documents=[EhrNote(source="t", source_id=str(number), text="x")]
        )
        with pool.lend() as enqueuer:
            enqueuer.send(chunk)
            lent.append(enqueuer)

    for number in range(3):  # one after the other, each thread gone before the next starts
        thread = threading.Thread(target=send_one, args=(number,))
        thread.start()
        thread.join()
    assert pool.made == 1 and lent[0] is lent[1] is lent[2]
    with pool.lend() as first, pool.lend() as second:
        assert first is not second
    assert pool.made == 2
    assert sorted(doc.source_id or "" for chunk in queued() for doc in chunk.documents) == ["0", "1", "2"]
    pool.close()
    assert pool.made == 0
