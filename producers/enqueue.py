"""Chunks -> Celery messages on the configured Redis queue, by task name (producers never import workers)."""

from __future__ import annotations

from celery import Celery
from kombu.exceptions import OperationalError
from redis.exceptions import RedisError

from nightclerk.shared.broker import ping
from nightclerk.shared.celery_app import make_celery
from nightclerk.shared.errors import BrokerUnavailable
from nightclerk.shared.messages import PROCESS_CHUNK_TASK, ChunkMessage
from nightclerk.shared.settings import Settings


class Enqueuer:
    """Sends chunks with ``send_task``; use as a context manager so its connections are released."""

    def __init__(self, settings: Settings, app: Celery | None = None) -> None:
        self.settings = settings
        self.queue = settings.queue
        self._owns_app = app is None
        self._app = app if app is not None else make_celery(settings)
        self.sent = 0

    def check(self) -> None:
        """Raise :class:`BrokerUnavailable` with a one-line hint when Redis does not answer."""
        ping(self.settings.redis_url)

    def send(self, chunk: ChunkMessage) -> str:
        """Enqueue one chunk; its Celery task id is the chunk id."""
        try:
            self._app.send_task(
                PROCESS_CHUNK_TASK,
                args=[chunk.model_dump(mode="json")],
                queue=self.queue,
                task_id=chunk.chunk_id,
                # Celery would otherwise put a repr of the arguments -- document text -- in the headers.
                argsrepr=f"[<chunk {chunk.chunk_id}: {len(chunk.documents)} {chunk.kind} documents>]",
                kwargsrepr="{}",
            )
        except (OperationalError, RedisError, OSError) as exc:
            raise BrokerUnavailable(
                f"sending to queue {self.queue} failed ({type(exc).__name__}) after {self.sent} chunks"
            ) from None
        self.sent += 1
        return chunk.chunk_id

    def close(self) -> None:
        if self._owns_app:
            self._app.close()

    def __enter__(self) -> Enqueuer:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
