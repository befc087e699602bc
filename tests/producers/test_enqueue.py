from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from nightclerk.producers.enqueue import Enqueuer
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
        assert enqueuer.sent == 1
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
