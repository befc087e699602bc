"""Chunk leases on the real Redis: one holder, renewed while held, released only by their holder."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import redis

from nightclerk.shared.errors import BrokerUnavailable
from nightclerk.workers.leases import ChunkLeases


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    connection = redis.Redis.from_url(redis_url)
    yield connection
    connection.close()


def test_a_chunk_has_one_holder_until_it_is_released(client: redis.Redis, queue_name: str) -> None:
    first = ChunkLeases(client, queue_name, "worker-a", ttl_s=5)
    second = ChunkLeases(client, queue_name, "worker-b", ttl_s=5)
    assert first.acquire("c1") is True
    assert second.acquire("c1") is False and second.owner("c1") == "worker-a"
    second.release("c1")  # not its lease: nothing happens
    assert first.owner("c1") == "worker-a"
    first.release("c1")
    assert second.acquire("c1") is True
    second.release("c1")
    assert client.exists(first.key("c1")) == 0
    first.close()
    second.close()


def test_a_held_lease_outlives_its_ttl_and_a_dead_holders_runs_out(
    client: redis.Redis, queue_name: str
) -> None:
    alive = ChunkLeases(client, queue_name, "alive", ttl_s=3)
    assert alive.acquire("long")
    time.sleep(4.5)  # past one TTL: the renewer (every TTL/3) kept it
    assert alive.owner("long") == "alive"
    alive.close()  # the process "dies": no more renewals
    deadline = time.monotonic() + 5
    while alive.owner("long") is not None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert alive.owner("long") is None
    assert ChunkLeases(client, queue_name, "next", ttl_s=3).acquire("long")


def test_without_redis_taking_a_lease_is_a_broker_outage(queue_name: str) -> None:
    gone = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5)
    with pytest.raises(BrokerUnavailable, match="Redis unreachable"):
        ChunkLeases(gone, queue_name, "w", ttl_s=5).acquire("c3")
