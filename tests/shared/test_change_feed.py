"""The change feed on the real Redis: announcements, consumer groups, restarts, trimming, Redis gone."""

from __future__ import annotations

import uuid

import pytest
import redis

from nightclerk.shared.change_feed import (
    ANNOUNCE_BATCH,
    Announcement,
    ChangeFeed,
    FeedConsumer,
    FeedEntry,
)
from nightclerk.shared.errors import FeedUnavailable


@pytest.fixture
def feed(change_feed: ChangeFeed) -> ChangeFeed:
    return change_feed


def announcements(n: int, start: int = 0) -> list[Announcement]:
    return [
        Announcement(f"t:n{i}", "ehr_note", "classify", "ehr-specialty", "1.0.0+abc", f"chunk-{i // 2}")
        for i in range(start, start + n)
    ]


def ids_of(entries: list[FeedEntry]) -> list[str]:
    return [entry.announcement.document_id for entry in entries]


def test_a_group_reads_every_announcement_in_order_with_its_fields(feed: ChangeFeed) -> None:
    stream_ids = feed.announce(announcements(5))
    assert len(stream_ids) == 5 and stream_ids == sorted(stream_ids) and feed.length() == 5
    consumer = FeedConsumer(feed, "sink", "c1")
    entries = consumer.read(count=10)
    assert [e.entry_id for e in entries] == stream_ids
    assert [e.announcement for e in entries] == announcements(5)
    assert consumer.ack(entries) == 5
    assert consumer.read(count=10) == []


def test_a_chunk_larger_than_one_script_call_is_announced_whole_and_in_order(feed: ChangeFeed) -> None:
    many = announcements(ANNOUNCE_BATCH * 2 + 17)
    stream_ids = feed.announce(many)
    in_order = sorted(stream_ids, key=lambda entry_id: tuple(int(part) for part in entry_id.split("-")))
    assert len(stream_ids) == len(many) and stream_ids == in_order
    read = FeedConsumer(feed, "sink", "c1").read(count=len(many) + 1)
    assert [e.entry_id for e in read] == stream_ids and [e.announcement for e in read] == many
    assert feed.announce([]) == []


def test_a_consumer_that_restarts_reads_what_it_never_acknowledged_first(feed: ChangeFeed) -> None:
    feed.announce(announcements(4))
    first = FeedConsumer(feed, "sink", "c1")
    read = first.read(count=3)
    first.ack(read[:1])  # the process dies holding two unacknowledged entries
    feed.announce(announcements(2, start=4))
    again = FeedConsumer(feed, "sink", "c1")
    assert ids_of(again.read(count=10)) == ["t:n1", "t:n2"]  # its backlog, then
    assert ids_of(again.read(count=10)) == ["t:n3", "t:n4", "t:n5"]  # what it had not read yet


def test_a_group_catches_up_after_downtime_and_members_share_the_work(feed: ChangeFeed) -> None:
    FeedConsumer(feed, "sink", "c1")  # the group exists, then nobody reads for a while
    feed.announce(announcements(6))
    one, two = FeedConsumer(feed, "sink", "c1"), FeedConsumer(feed, "sink", "c2")
    got_one, got_two = one.read(count=3), two.read(count=10)
    assert sorted(ids_of(got_one) + ids_of(got_two)) == sorted(a.document_id for a in announcements(6))
    assert not set(ids_of(got_one)) & set(ids_of(got_two))
    other_group = FeedConsumer(feed, "digest", "c1")  # a second group reads everything on its own
    assert len(other_group.read(count=10)) == 6


def test_a_new_group_can_start_at_the_end(feed: ChangeFeed) -> None:
    feed.announce(announcements(3))
    late = FeedConsumer(feed, "late", "c1", from_start=False)
    assert late.read(count=10) == []
    feed.announce(announcements(1, start=3))
    assert ids_of(late.read(count=10)) == ["t:n3"]


def test_entries_trimmed_while_pending_are_let_go(feed: ChangeFeed) -> None:
    feed.announce(announcements(3))
    FeedConsumer(feed, "sink", "c1").read(count=10)  # read, never acknowledged
    feed.client.xtrim(feed.stream, maxlen=0)
    again = FeedConsumer(feed, "sink", "c1")
    assert again.read(count=10) == []
    assert feed.client.xpending(feed.stream, "sink")["pending"] == 0


def test_the_stream_is_trimmed_to_about_its_cap(redis_url: str) -> None:
    feed = ChangeFeed.from_url(redis_url, f"nightclerk-test-feed-{uuid.uuid4().hex[:10]}", max_entries=100)
    try:
        for start in range(0, 1000, 50):
            feed.announce(announcements(50, start=start))
        assert 100 <= feed.length() < 1000  # MAXLEN ~ trims whole macro nodes, so "about"
    finally:
        feed.client.delete(feed.stream)
        feed.close()


def test_redis_gone_is_feed_unavailable() -> None:
    feed = ChangeFeed(redis.Redis(port=1, socket_connect_timeout=0.5), "nightclerk-test-feed-gone")
    with pytest.raises(FeedUnavailable, match="Redis unreachable"):
        feed.announce(announcements(1))
    with pytest.raises(FeedUnavailable):
        FeedConsumer(feed, "sink", "c1")
