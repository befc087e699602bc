"""Chunks -> Celery messages on the configured Redis queue, by task name (producers never import workers).

The sending itself -- signature, the chunk ledger, retries while Redis is away -- is the shared
:class:`~nightclerk.shared.chunk_sender.ChunkSender`, which workers use to send a chunk again.
"""

from __future__ import annotations

from celery import Celery

from nightclerk.shared.broker import ping
from nightclerk.shared.chunk_sender import ChunkSender
from nightclerk.shared.errors import BrokerUnavailable
from nightclerk.shared.messages import ChunkMessage
from nightclerk.shared.redis_conn import safe_url
from nightclerk.shared.settings import Settings


class Enqueuer:
    """Sends chunks; use as a context manager so its connections are released."""

    def __init__(self, settings: Settings, app: Celery | None = None) -> None:
        self.settings = settings
        self.queue = settings.queue
        self._sender = ChunkSender(settings, app)
        self.sent = 0

    def check(self) -> None:
        """Raise :class:`BrokerUnavailable` with a one-line hint when Redis does not answer; asked on the
        connection the chunks will take (a fresh one cost ~2 ms of handshakes per push)."""
        ping(self.settings, using=self._sender.ledger.client)

    def send(self, chunk: ChunkMessage) -> str:
        """Enqueue one chunk, signed when a signing key is set; its Celery task id is the chunk id.

        While Redis is away the send is retried for ``publish_retry_s``, then given up (the caller says
        how many of its chunks had gone: one Enqueuer may serve many pushes, as the webhook's does).
        """
        try:
            self._sender.send_new(chunk)
        except BrokerUnavailable as exc:
            where = f"queue {self.queue} at {safe_url(self.settings.redis_url)}"
            raise BrokerUnavailable(f"{exc}: {where}") from None
        self.sent += 1
        return chunk.chunk_id

    def close(self) -> None:
        self._sender.close()

    def __enter__(self) -> Enqueuer:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
