"""Chunks -> Celery messages on the configured Redis queue, by task name (producers never import workers).

The sending itself -- signature, the chunk ledger, retries while Redis is away -- is the shared
:class:`~nightclerk.shared.chunk_sender.ChunkSender`, which workers use to send a chunk again.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from celery import Celery

from nightclerk.shared.broker import ping
from nightclerk.shared.chunk_sender import ChunkSender
from nightclerk.shared.messages import ChunkMessage
from nightclerk.shared.settings import Settings


class Enqueuer:
    """Sends chunks; use as a context manager so its connections are released."""

    def __init__(self, settings: Settings, app: Celery | None = None) -> None:
        self.settings = settings
        self.queue = settings.queue
        self._sender = ChunkSender(settings, app)

    def check(self) -> None:
        """Raise :class:`BrokerUnavailable` with a one-line hint when Redis does not answer; asked on the
        connection the chunks will take (a fresh one cost ~2 ms of handshakes per push)."""
        ping(self.settings, using=self._sender.ledger.client)

    def send(self, chunk: ChunkMessage) -> str:
        """Enqueue one chunk, signed when a signing key is set; its Celery task id is the chunk id.

        While Redis is away the send is retried for ``publish_retry_s``, then given up with a
        :class:`BrokerUnavailable` naming the queue (the caller says how many of its chunks had gone).
        """
        self._sender.send_new(chunk)
        return chunk.chunk_id

    def close(self) -> None:
        self._sender.close()

    def __enter__(self) -> Enqueuer:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


class EnqueuerPool:
    """Enqueuers lent to one caller at a time and kept, with their open connections, until :meth:`close`:
    as many are made as were ever lent at once. The webhook lends one per request, on whichever threadpool
    thread runs it; a fresh Enqueuer per request opened its Redis and Celery connections anew, and one kept
    per thread leaked them, since AnyIO ends a thread after 10 s idle. Never one used by two callers at
    once: Celery does not promise that an app's producer pool may be."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._idle: queue.SimpleQueue[Enqueuer] = queue.SimpleQueue()
        self._made: list[Enqueuer] = []
        self._lock = threading.Lock()

    @property
    def made(self) -> int:
        return len(self._made)

    @contextmanager
    def lend(self) -> Iterator[Enqueuer]:
        try:
            enqueuer = self._idle.get_nowait()
        except queue.Empty:
            enqueuer = Enqueuer(self.settings)  # connects on its first send
            with self._lock:
                self._made.append(enqueuer)
        try:
            yield enqueuer
        finally:
            self._idle.put(enqueuer)

    def close(self) -> None:
        with self._lock:
            made, self._made = self._made, []
        for enqueuer in made:
            enqueuer.close()
