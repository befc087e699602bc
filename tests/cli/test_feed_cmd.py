from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from nightclerk.cli.main import app
from nightclerk.shared.change_feed import Announcement, ChangeFeed
from nightclerk.shared.settings import get_settings


@pytest.fixture
def feed(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[ChangeFeed]:
    stream = f"nightclerk-test-feed-{uuid.uuid4().hex[:10]}"
    monkeypatch.setenv("NIGHTCLERK_REDIS_URL", redis_url)
    monkeypatch.setenv("NIGHTCLERK_FEED_STREAM", stream)
    get_settings.cache_clear()
    result = ChangeFeed.from_url(redis_url, stream)
    result.announce(
        [Announcement(f"t:n{i}", "ehr_note", "classify", "ehr-specialty", "v1", "c1") for i in range(3)]
    )
    yield result
    result.client.delete(stream)
    result.close()
    get_settings.cache_clear()


def test_follow_prints_json_lines_and_a_group_keeps_its_place(feed: ChangeFeed) -> None:
    args = ["feed", "follow", "--group", "sink", "--consumer", "c1", "--wait-s", "0.2"]
    first = CliRunner().invoke(app, [*args, "--count", "2"])
    assert first.exit_code == 0, first.output
    lines = [json.loads(line) for line in first.stdout.splitlines()]
    assert [line["document_id"] for line in lines] == ["t:n0", "t:n1"]
    assert set(lines[0]) == {
        "entry_id",
        "document_id",
        "kind",
        "task",
        "pack_name",
        "pack_version",
        "chunk_id",
    }
    rest = CliRunner().invoke(app, [*args, "--count", "1"])
    assert [json.loads(line)["document_id"] for line in rest.stdout.splitlines()] == ["t:n2"]
    info = CliRunner().invoke(app, ["feed", "info"])
    assert info.exit_code == 0
    assert f"stream {feed.stream}: 3 entries" in info.stdout
    assert "group sink: 0 unread, 0 read but not acknowledged, 1 consumers" in info.stdout


def test_follow_without_redis_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NIGHTCLERK_REDIS_URL", "redis://127.0.0.1:1/0")
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["feed", "follow", "--group", "g", "--count", "1"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 1 and "Redis unreachable" in result.output


def test_writeback_without_an_endpoint_says_what_to_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NIGHTCLERK_WRITEBACK_URL_TEMPLATE", raising=False)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["writeback", "--count", "1"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 2 and "NIGHTCLERK_WRITEBACK_URL_TEMPLATE" in result.output
