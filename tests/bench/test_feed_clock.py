from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from bench.feed_clock import FeedClock, entry_seconds
from nightclerk.shared.change_feed import Announcement


def _announcement(document_id: str) -> Announcement:
    return Announcement(document_id, "repair_ticket", "classify", "ticket-system", "1", "c" * 32)


def test_entry_ids_carry_redis_milliseconds() -> None:
    assert entry_seconds("1733493600123-7") == pytest.approx(1733493600.123)


def test_counts_distinct_documents_announced_after_the_mark(redis_url: str, change_feed: Any) -> None:
    change_feed.announce([_announcement("before")])  # announced before the mark: not counted
    clock = FeedClock(redis_url, change_feed.stream)
    try:
        clock.mark()
        started = clock.redis_now()

        def worker() -> None:  # two chunks, the first announced twice (at least once)
            time.sleep(0.2)
            change_feed.announce([_announcement("a"), _announcement("b")])
            change_feed.announce([_announcement("a"), _announcement("b")])
            time.sleep(0.3)
            change_feed.announce([_announcement("c")])

        thread = threading.Thread(target=worker)
        thread.start()
        progress = clock.wait(3, started, timeout=10)
        thread.join()
    finally:
        clock.close()
    assert [count for _, count in progress] == [1, 2, 3]
    first, last = progress[0][0], progress[-1][0]
    assert 0.15 <= first < 2.0  # Redis's clock, from the start to the first announcement
    assert 0.25 <= last - first < 2.0


def test_gives_up_after_its_timeout_and_stops_when_the_check_raises(redis_url: str, change_feed: Any) -> None:
    clock = FeedClock(redis_url, change_feed.stream)
    try:
        clock.mark()
        with pytest.raises(SystemExit, match="only 0 of 1"):
            clock.wait(1, clock.redis_now(), timeout=0.5)

        def worker_gone() -> None:
            raise SystemExit("a worker exited")

        with pytest.raises(SystemExit, match="a worker exited"):
            clock.wait(1, clock.redis_now(), check=worker_gone)
    finally:
        clock.close()
