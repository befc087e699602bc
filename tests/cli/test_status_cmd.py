from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
from typer.testing import CliRunner

from nightclerk.cli.main import app
from nightclerk.shared.change_feed import Announcement, ChangeFeed, FeedConsumer
from nightclerk.shared.results import ResultRow
from nightclerk.shared.settings import get_settings
from nightclerk.shared.store import ResultStore


@pytest.fixture
def env(
    tmp_path: Path, redis_url: str, queue_name: str, change_feed: ChangeFeed, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    for key, value in {
        "NIGHTCLERK_REDIS_URL": redis_url, "NIGHTCLERK_QUEUE": queue_name,
        "NIGHTCLERK_DATA_DIR": str(tmp_path), "NIGHTCLERK_FEED_STREAM": change_feed.stream,
    }.items():  # fmt: skip
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("NIGHTCLERK_DATABASE_URL", raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_status_shows_the_queue_the_throughput_and_the_feed(
    env: None, tmp_path: Path, redis_url: str, queue_name: str, change_feed: ChangeFeed
) -> None:
    store = ResultStore(f"sqlite:///{tmp_path / 'results.db'}")
    store.create_schema()
    now = datetime.now(UTC)
    store.upsert([
        ResultRow(document_id=f"t:{i}", kind="ehr_note", task="classify", pack_name="p", pack_version="v",
                  precision="int8", worker_id="w", chunk_id="c",
                  created_at=now - timedelta(minutes=2 + 20 * i))
        for i in range(3)
    ])  # fmt: skip
    store.close()
    redis.Redis.from_url(redis_url).lpush(queue_name, "m1", "m2")
    change_feed.announce([Announcement("t:0", "ehr_note", "classify", "p", "v", "c")])
    FeedConsumer(change_feed, "sink", "c1")
    result = CliRunner().invoke(app, ["status", "--wait-s", "0.3"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert f"{queue_name}: 2 waiting" in result.output
    assert "0 answered" in result.output  # no worker runs in this test
    assert "1 results (0.2 per minute)" in result.output  # last 5 minutes: the row 2 minutes old
    assert "3 results (0.1 per minute)" in result.output  # last hour: all three (2, 22 and 42 minutes old)
    assert f"{change_feed.stream}: 1 entries" in result.output and "group sink" in result.output
    assert re.search(r"dead letters\s+│ none", result.output)
    assert "0 sent and not yet finished" in result.output  # the two raw test messages are not on record


def test_status_without_redis_exits_2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NIGHTCLERK_REDIS_URL", "redis://127.0.0.1:1/0")
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["status"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 2 and "no Redis answers" in result.output
