"""Chunk leases: one worker runs a chunk at a time, even when Redis hands the chunk out twice.

Redis hands a chunk to another worker once it has gone unacknowledged for the visibility timeout -- which
is how a dead worker's chunk is recovered, but also what happens to a chunk that simply runs long (a slow
store, a big summarize batch; the solo pool cannot enforce a time limit). Without a lease both workers
would run it, and both would pay for inference.

A lease is a Redis key ``{queue}:lease:{chunk id}`` holding the worker's id, set with ``NX`` and a TTL. A
daemon thread renews the leases this process holds every third of the TTL, so a lease outlives its
worker by at most one TTL. A worker handed a chunk whose lease another holds sends it back for later
(``tasks.process_chunk``); by then the first worker has stored the results, or died and let its lease run
out. Renewal and release check the owner in one Lua script, so a worker never extends or drops a lease
that expired and went to someone else.

Hand-written: a lock library (e.g. python-redis-lock) would do, but this needs one key, three commands and
a renewal thread that renews every lease the process holds.
"""

from __future__ import annotations

import threading

import redis

from nightclerk.shared.errors import BrokerUnavailable
from nightclerk.shared.logging import get_logger

log = get_logger(__name__)
_UNREACHABLE = (redis.ConnectionError, redis.TimeoutError, OSError)
_IF_OURS = "if redis.call('get', KEYS[1]) == ARGV[1] then return "
_RENEW = _IF_OURS + "redis.call('pexpire', KEYS[1], ARGV[2]) end return 0"
_RELEASE = _IF_OURS + "redis.call('del', KEYS[1]) end return 0"


class ChunkLeases:
    def __init__(self, client: redis.Redis, queue: str, worker_id: str, ttl_s: float) -> None:
        self.client = client
        self.prefix = f"{queue}:lease:"
        self.worker_id = worker_id
        self.ttl_ms = int(ttl_s * 1000)
        self._held: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)

    def key(self, chunk_id: str) -> str:
        return self.prefix + chunk_id

    def acquire(self, chunk_id: str) -> bool:
        """Take the chunk's lease; False when another worker holds it; :class:`BrokerUnavailable` without
        Redis."""
        try:
            taken = self.client.set(self.key(chunk_id), self.worker_id, nx=True, px=self.ttl_ms)
        except _UNREACHABLE as exc:
            raise BrokerUnavailable(
                f"lease of chunk {chunk_id}: Redis unreachable ({type(exc).__name__})"
            ) from None
        if not taken:
            return False
        with self._lock:
            self._held.add(chunk_id)
        self._start_renewer()
        return True

    def owner(self, chunk_id: str) -> str | None:
        """Who holds the chunk's lease now (None: nobody, or Redis did not answer)."""
        try:
            value = self.client.get(self.key(chunk_id))
        except _UNREACHABLE:
            return None
        if value is None:
            return None
        return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)

    def held(self, chunk_ids: list[str]) -> list[bool]:
        """Whether any worker holds each chunk's lease (one round trip)."""
        with self.client.pipeline(transaction=False) as pipe:
            for chunk_id in chunk_ids:
                pipe.exists(self.key(chunk_id))
            return [bool(found) for found in pipe.execute()]

    def release(self, chunk_id: str) -> None:
        """Drop the lease if it is still ours; a Redis error leaves it to expire."""
        with self._lock:
            self._held.discard(chunk_id)
        try:
            self._release(keys=[self.key(chunk_id)], args=[self.worker_id])
        except _UNREACHABLE as exc:
            log.warning("lease_release_failed", chunk_id=chunk_id, error=type(exc).__name__)

    def renew_all(self) -> int:
        """Extend every lease this process holds; how many were still ours."""
        with self._lock:
            held = list(self._held)
        kept = 0
        for chunk_id in held:
            try:
                kept += int(self._renew(keys=[self.key(chunk_id)], args=[self.worker_id, self.ttl_ms]))
            except _UNREACHABLE as exc:
                log.warning("lease_renew_failed", chunk_id=chunk_id, error=type(exc).__name__)
        return kept

    def close(self) -> None:
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join(timeout=5)

    def _start_renewer(self) -> None:
        if self._renewer is not None and self._renewer.is_alive():
            return
        self._renewer = threading.Thread(
            target=self._renew_loop, name="nightclerk-lease-renewer", daemon=True
        )
        self._renewer.start()

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.ttl_ms / 3000):
            try:
                self.renew_all()
            except Exception as exc:  # the renewer must outlive any one bad round
                log.warning("lease_renew_failed", error=type(exc).__name__)
