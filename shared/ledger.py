"""The chunk ledger: every chunk pushed stays on record in Redis until a worker has finished it.

Why: Celery's Redis transport takes a message off the queue with ``BRPOP`` and only then records it as
unacknowledged. A worker killed between the two loses the message for good -- rare (a millisecond per
chunk), but a night of kills, OOMs and deploys finds it (the worker-death test did). Any other path that
acknowledges a chunk without finishing it (a failed retry publish, a restore that finds no queue) would
lose it the same way. The ledger makes such a loss visible and repairs it.

What it holds, under ``{queue}:ledger:*`` on the broker's Redis:

- ``pushed``: chunk id -> sequence number (a zset), from one counter, taken when the chunk is sent and
  again whenever it is sent anew (a deferral);
- ``bodies``: chunk id -> the message and its signature, zlib-compressed, to send it again;
- ``started``: chunk id -> when a worker last began it; ``watermark``: the highest sequence number begun;
- ``suspects``: chunk id -> when a sweep first found it unaccounted for.

A chunk leaves the ledger when a worker has stored its results (or dead letters). The queue is first in,
first out for new messages, so once a chunk with a higher number has been begun, a chunk with a lower one
has left the queue; if it has not begun either, it is in a worker's hands (begun any moment), held back
with a delay (due within ``retry_backoff_max_s``), unacknowledged after a worker died (handed out again
after the visibility timeout) -- or lost. The same holds for every chunk once the queue is empty. A chunk
begun whose lease is gone (its worker died) is due back within the visibility timeout as well. So a sweep
(``workers/ledger_sweeper.py``, one worker at a time) sends again every chunk unaccounted for longer than
twice the visibility timeout. A copy sent needlessly costs a lookup: its results are stored once, its
lease keeps two copies from running together.

Hand-written: queue libraries with reliable Redis queues (RQ, arq, dramatiq) replace Celery rather than
repair it; these are a few Lua scripts on data nightclerk already keeps.
"""

from __future__ import annotations

import json
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import redis

from nightclerk.shared.errors import BrokerUnavailable

_UNREACHABLE = (redis.ConnectionError, redis.TimeoutError, OSError)
SWEEP_BATCH = 1_000

# KEYS: seq, pushed, bodies, started, suspects; ARGV: chunk id, body (or "" to keep the stored one: a chunk
# finished meanwhile is not put back on record)
_RECORD = """
if ARGV[2] == '' and redis.call('hexists', KEYS[3], ARGV[1]) == 0 then return 0 end
local seq = redis.call('incr', KEYS[1])
redis.call('zadd', KEYS[2], seq, ARGV[1])
if ARGV[2] ~= '' then redis.call('hset', KEYS[3], ARGV[1], ARGV[2]) end
redis.call('hdel', KEYS[4], ARGV[1])
redis.call('hdel', KEYS[5], ARGV[1])
return seq
"""
# KEYS: pushed, started, suspects, watermark; ARGV: chunk id, now
_BEGIN = """
local seq = redis.call('zscore', KEYS[1], ARGV[1])
if not seq then return 0 end
redis.call('hset', KEYS[2], ARGV[1], ARGV[2])
redis.call('hdel', KEYS[3], ARGV[1])
if tonumber(seq) > tonumber(redis.call('get', KEYS[4]) or '0') then redis.call('set', KEYS[4], seq) end
return 1
"""


@dataclass(frozen=True)
class LedgerEntry:
    chunk_id: str
    message: dict[str, Any]
    signature: str | None


class ChunkLedger:
    def __init__(self, client: redis.Redis, queue: str) -> None:
        self.client = client
        self.queue = queue
        prefix = f"{queue}:ledger:"
        self.keys = {
            name: prefix + name for name in ("seq", "pushed", "bodies", "started", "suspects", "watermark")
        }
        self._record = client.register_script(_RECORD)
        self._begin = client.register_script(_BEGIN)

    def _k(self, *names: str) -> list[str]:
        return [self.keys[name] for name in names]

    def record(self, chunk_id: str, message: dict[str, Any], signature: str | None) -> int:
        """Put a chunk on record before it is sent; its sequence number."""
        body = zlib.compress(json.dumps({"message": message, "signature": signature}).encode("utf-8"), 1)
        return int(self._call(self._record, self._k("seq", "pushed", "bodies", "started", "suspects"),
                              [chunk_id, body]))  # fmt: skip

    def resent(self, chunk_id: str) -> None:
        """The chunk is about to be sent anew (deferred or recovered): it goes to the back of the line."""
        self._call(self._record, self._k("seq", "pushed", "bodies", "started", "suspects"), [chunk_id, ""])

    def begin(self, chunk_id: str) -> bool:
        """A worker begins the chunk; False when it is not on record (sent by an older producer)."""
        keys = self._k("pushed", "started", "suspects", "watermark")
        return bool(self._call(self._begin, keys, [chunk_id, f"{time.time():.3f}"]))

    def done(self, chunk_id: str) -> None:
        """Every document of the chunk has its results or its dead letter: off the record."""
        with _reaching_redis(), self.client.pipeline(transaction=True) as pipe:
            pipe.zrem(self.keys["pushed"], chunk_id)
            for name in ("bodies", "started", "suspects"):
                pipe.hdel(self.keys[name], chunk_id)
            pipe.execute()

    def entry(self, chunk_id: str) -> LedgerEntry | None:
        with _reaching_redis():
            raw: bytes | None = self.client.hget(self.keys["bodies"], chunk_id)  # type: ignore[assignment]
        if raw is None:
            return None
        body = json.loads(zlib.decompress(raw))
        return LedgerEntry(chunk_id, body["message"], body["signature"])

    def outstanding(self) -> int:
        """Chunks sent and not yet finished (waiting, running, held back or lost)."""
        with _reaching_redis():
            return int(self.client.zcard(self.keys["pushed"]))

    def unaccounted(
        self, *, queue_empty: bool, leased: Callable[[list[str]], list[bool]], lost_after_s: float
    ) -> list[str]:
        """The chunks to send again: unaccounted for longer than ``lost_after_s`` (see the module)."""
        now = time.time()
        watermark = float(self.client.get(self.keys["watermark"]) or 0)
        highest = "+inf" if queue_empty else f"({watermark}"
        ids = [
            _text(i) for i in self.client.zrangebyscore(self.keys["pushed"], "-inf", highest, 0, SWEEP_BATCH)
        ]
        if not ids:
            return []
        started = self.client.hmget(self.keys["started"], ids)
        suspects = self.client.hmget(self.keys["suspects"], ids)
        holding = leased(ids)
        lost: list[str] = []
        newly_suspect: dict[Any, Any] = {}  # redis-py's own (wide) key and value types
        for chunk_id, began, since, held in zip(ids, started, suspects, holding, strict=True):
            if held:
                continue
            if began is not None:  # begun, and no worker holds it: its worker died
                if now - float(began) > lost_after_s:  # ... and it was not handed out again in time
                    lost.append(chunk_id)
            elif since is None:
                newly_suspect[chunk_id] = f"{now:.3f}"
            elif now - float(since) > lost_after_s:
                lost.append(chunk_id)
        if newly_suspect:
            self.client.hset(self.keys["suspects"], mapping=newly_suspect)
        return lost

    def _call(self, script: Any, keys: list[str], args: list[Any]) -> Any:
        with _reaching_redis():
            return script(keys=keys, args=args)


@contextmanager
def _reaching_redis() -> Iterator[None]:
    try:
        yield
    except _UNREACHABLE as exc:
        raise BrokerUnavailable(f"chunk ledger: Redis unreachable ({type(exc).__name__})") from None


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)
