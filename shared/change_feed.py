"""The change feed: every stored result is announced on a Redis Stream, for downstream consumers.

An entry holds ids, never text: document id, kind, task, pack name and version, chunk id.

Announcing is *at least once*. After committing a chunk's rows for a task, the worker announces every
document of the chunk that has a row for that task and pack version -- the rows it stored and the ones it
found already stored. A worker that died between its commit and its announcement is thus made good when the
chunk is delivered again. A consumer keys on (document id, task, pack version) and may see one twice.

Consumers read through a Redis consumer group (``XREADGROUP``): a consumer that was down catches up from where
its group left off, and the entries it had read but not acknowledged are read again first after a restart.
The stream is trimmed to about ``max_entries`` (``XADD MAXLEN ~``), so a group can fall that far behind and no
further.

redis-py gives the stream commands; the group bookkeeping (create it once, pending entries before new ones) is
hand-written below, as no maintained library wraps it. A chunk's entries are added by one Lua script call
(:data:`_ANNOUNCE`): 1,024 ``XADD`` s in a redis-py pipeline took 65-80 ms of a worker's chunk (nearly all of
it redis-py building the commands), the script 21-24 ms (``python -m bench.chunk_steps``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import redis

from nightclerk.shared.errors import FeedUnavailable
from nightclerk.shared.redis_conn import connect
from nightclerk.shared.settings import Settings

DEFAULT_STREAM = "nightclerk:results"
SOCKET_TIMEOUT_S = 30
MAX_BLOCK_MS = 10_000  # a blocking read waits at most this long, well inside the socket timeout
_REDIS_ERRORS = (redis.ConnectionError, redis.TimeoutError, OSError)
ANNOUNCE_BATCH = 1000  # entries per script call: its arguments stay a few thousand
# ARGV: maxlen, the number of fields, the field names, then the values entry by entry. Returns the ids.
_ANNOUNCE = """
local maxlen, width = ARGV[1], tonumber(ARGV[2])
local ids = {}
for first = 3 + width, #ARGV, width do
  local entry = {}
  for f = 1, width do
    entry[2 * f - 1] = ARGV[2 + f]
    entry[2 * f] = ARGV[first + f - 1]
  end
  ids[#ids + 1] = redis.call('XADD', KEYS[1], 'MAXLEN', '~', maxlen, '*', unpack(entry))
end
return ids
"""


@dataclass(frozen=True)
class Announcement:
    """One stored result, as the feed tells it."""

    document_id: str
    kind: str
    task: str
    pack_name: str
    pack_version: str
    chunk_id: str

    @classmethod
    def from_fields(cls, fields: Mapping[Any, Any]) -> Announcement:
        values = {_text(key): _text(value) for key, value in fields.items()}
        return cls(**{name: values.get(name, "") for name in cls.__dataclass_fields__})


_FIELDS = tuple(field.name for field in dataclasses.fields(Announcement))  # an entry's fields, in this order


@dataclass(frozen=True)
class GroupState:
    name: str
    consumers: int
    pending: int  # read by a consumer, not acknowledged
    lag: int | None  # not yet read by the group (None: Redis cannot tell, e.g. after trimming)


@dataclass(frozen=True)
class FeedEntry:
    entry_id: str  # the stream's id: milliseconds-sequence, increasing
    announcement: Announcement


def _text(value: Any) -> str:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else str(value)


class ChangeFeed:
    """The stream a worker writes to and consumers read from."""

    def __init__(
        self, client: redis.Redis, stream: str = DEFAULT_STREAM, *, max_entries: int = 1_000_000
    ) -> None:
        self.client = client
        self.stream = stream
        self.max_entries = max_entries
        self._announce = client.register_script(_ANNOUNCE)

    @classmethod
    def from_url(
        cls,
        url: str,
        stream: str = DEFAULT_STREAM,
        *,
        max_entries: int = 1_000_000,
        sentinel_master: str | None = None,
    ) -> ChangeFeed:
        client = connect(url, sentinel_master=sentinel_master, socket_timeout=SOCKET_TIMEOUT_S)
        return cls(client, stream, max_entries=max_entries)

    @classmethod
    def from_settings(cls, settings: Settings) -> ChangeFeed:
        """The feed the settings name: ``feed_stream`` on ``redis_url``, trimmed to ``feed_max_entries``."""
        return cls.from_url(
            settings.redis_url,
            settings.feed_stream,
            max_entries=settings.feed_max_entries,
            sentinel_master=settings.redis_sentinel_master,
        )

    def announce(self, announcements: Sequence[Announcement]) -> list[str]:
        """Append one entry per announcement, in order; their stream ids."""
        ids: list[str] = []
        for start in range(0, len(announcements), ANNOUNCE_BATCH):
            args: list[Any] = [self.max_entries, len(_FIELDS), *_FIELDS]
            for announcement in announcements[start : start + ANNOUNCE_BATCH]:
                args += [getattr(announcement, name) for name in _FIELDS]
            try:
                added = self._announce(keys=[self.stream], args=args)
            except _REDIS_ERRORS as exc:
                raise FeedUnavailable(
                    f"change feed {self.stream}: Redis unreachable ({type(exc).__name__})"
                ) from None
            ids += [_text(entry_id) for entry_id in added]
        return ids

    def length(self) -> int:
        try:
            return int(self.client.xlen(self.stream))
        except _REDIS_ERRORS as exc:
            raise FeedUnavailable(
                f"change feed {self.stream}: Redis unreachable ({type(exc).__name__})"
            ) from None

    def groups(self) -> list[GroupState]:
        try:
            found: Any = self.client.xinfo_groups(self.stream)
        except redis.ResponseError:  # no stream yet
            return []
        except _REDIS_ERRORS as exc:
            raise FeedUnavailable(
                f"change feed {self.stream}: Redis unreachable ({type(exc).__name__})"
            ) from None
        return [
            GroupState(
                name=_text(group["name"]),
                consumers=int(group["consumers"]),
                pending=int(group["pending"]),
                lag=None if group.get("lag") is None else int(group["lag"]),
            )
            for group in found
        ]

    def close(self) -> None:
        self.client.close()


class FeedConsumer:
    """One consumer of a consumer group: its unacknowledged entries first, then new ones.

    ``from_start``: a group created now reads the whole retained stream (True) or only what comes after
    (False). An existing group keeps its place either way.
    """

    def __init__(self, feed: ChangeFeed, group: str, consumer: str, *, from_start: bool = True) -> None:
        self.feed = feed
        self.group = group
        self.consumer = consumer
        self._pending_after: str | None = "0"  # None once this consumer's backlog is read
        try:
            feed.client.xgroup_create(feed.stream, group, id="0" if from_start else "$", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        except _REDIS_ERRORS as exc:
            raise FeedUnavailable(
                f"change feed {feed.stream}: Redis unreachable ({type(exc).__name__})"
            ) from None

    def read(self, count: int = 100, block_ms: int | None = None) -> list[FeedEntry]:
        """Up to ``count`` entries: first the ones read before and never acknowledged, then new ones.

        ``block_ms`` waits that long for new entries when there are none (None: do not wait), at most
        ``MAX_BLOCK_MS``: a longer wait would outlast the socket timeout and read as Redis being gone.
        """
        if block_ms is not None:
            block_ms = min(block_ms, MAX_BLOCK_MS)
        try:
            if self._pending_after is not None:
                entries, last = self._read(self._pending_after, count, None)
                if last is not None:
                    self._pending_after = last
                    return entries
                self._pending_after = None
            return self._read(">", count, block_ms)[0]
        except _REDIS_ERRORS as exc:
            raise FeedUnavailable(
                f"change feed {self.feed.stream}: Redis unreachable ({type(exc).__name__})"
            ) from None

    def ack(self, entries: Sequence[FeedEntry]) -> int:
        if not entries:
            return 0
        try:
            return int(self.feed.client.xack(self.feed.stream, self.group, *(e.entry_id for e in entries)))
        except _REDIS_ERRORS as exc:
            raise FeedUnavailable(
                f"change feed {self.feed.stream}: Redis unreachable ({type(exc).__name__})"
            ) from None

    def _read(self, after: str, count: int, block_ms: int | None) -> tuple[list[FeedEntry], str | None]:
        """The entries read, and the id of the last one the reply named (None: the reply was empty)."""
        reply: Any = self.feed.client.xreadgroup(
            self.group, self.consumer, {self.feed.stream: after}, count=count, block=block_ms
        )
        entries: list[FeedEntry] = []
        gone: list[str] = []
        last: str | None = None
        for _stream, items in reply or []:
            for raw_id, fields in items:
                last = _text(raw_id)
                if fields:
                    entries.append(FeedEntry(last, Announcement.from_fields(fields)))
                else:  # trimmed from the stream while it was pending: nothing left to read, so let it go
                    gone.append(last)
        if gone:
            self.feed.client.xack(self.feed.stream, self.group, *gone)
        return entries, last
