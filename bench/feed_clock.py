"""When results are stored, read off the change feed instead of polling the store.

Every worker announces each result on the change feed right after committing it (``shared/change_feed.py``),
and Redis stamps each entry with its own clock in milliseconds. So the benchmark can wait on one blocking
``XREAD`` -- which costs nothing while nothing arrives -- and take each chunk's commit time from its entry
ids. Polling ``count(*)`` on the store instead every 50 ms cost the two cores work that grew with the table
and told the time only to the poll's granularity.

Entries are counted by document id, so a chunk announced twice (at least once) is not counted twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import redis

READ_COUNT = 10_000
BLOCK_MS = 1_000


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def entry_seconds(entry_id: str) -> float:
    """The Redis time (Unix seconds) at which an entry was added: its id is ``<ms>-<seq>``."""
    return int(entry_id.split("-", 1)[0]) / 1000.0


class FeedClock:
    """Counts the distinct documents announced on ``stream`` after :meth:`mark`."""

    def __init__(self, redis_url: str, stream: str) -> None:
        self.client = redis.Redis.from_url(redis_url, socket_timeout=BLOCK_MS / 1000 + 10)
        self.stream = stream
        self._after = "0"

    def redis_now(self) -> float:
        """Redis's clock (Unix seconds), the one the entry ids are stamped with."""
        seconds, micros = self.client.time()
        return float(seconds) + micros / 1e6

    def mark(self) -> None:
        """Count only what is announced from now on."""
        last: Any = self.client.xrevrange(self.stream, count=1)
        self._after = _text(last[0][0]) if last else "0"

    def wait(
        self,
        target: int,
        started: float,
        *,
        timeout: float = 3600.0,
        check: Callable[[], None] = lambda: None,
    ) -> list[tuple[float, int]]:
        """Block until ``target`` distinct documents were announced since :meth:`mark`.

        ``started`` is a Redis time (:meth:`redis_now`); the answer is (seconds since ``started``, documents
        so far) at each entry that added documents, the last one being when the target was reached.
        ``check`` runs at least once a second while waiting (raise in it to stop: a worker that exited).
        """
        seen: set[str] = set()
        progress: list[tuple[float, int]] = []
        deadline = time.monotonic() + timeout
        while len(seen) < target:
            if time.monotonic() > deadline:
                raise SystemExit(f"only {len(seen)} of {target} results announced after {timeout:.0f}s")
            check()
            reply: Any = self.client.xread({self.stream: self._after}, count=READ_COUNT, block=BLOCK_MS)
            for _stream, entries in reply or []:
                for raw_id, fields in entries:
                    self._after = _text(raw_id)
                    raw = fields.get(b"document_id")
                    document_id = None if raw is None else _text(raw)
                    if document_id is None or document_id in seen:
                        continue
                    seen.add(document_id)
                    progress.append((entry_seconds(self._after) - started, len(seen)))
        return progress

    def close(self) -> None:
        self.client.close()
