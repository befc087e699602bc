from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from nightclerk.producers.enqueue import Enqueuer
from nightclerk.shared.documents import EhrNote
from nightclerk.shared.errors import BrokerUnavailable
from nightclerk.shared.messages import ChunkMessage
from nightclerk.shared.settings import Settings

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
