"""Putting chunk messages on the queue: signed, on the ledger first, then sent -- by producers and workers.

Producers send new chunks (``producers/enqueue.py``); workers send a chunk again when they defer it or when
the ledger finds it lost (``workers/tasks.py``, ``workers/ledger_sweeper.py``). Either way the ledger is
written before the message is sent, so a chunk is never on the queue without being on record. While Redis
is away both steps are retried for ``publish_retry_s`` (kombu's retry policy for the send, ``retrying.py`` for
the ledger), then :class:`BrokerUnavailable` is raised.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from celery import Celery
from kombu.exceptions import OperationalError
from redis.exceptions import RedisError

from nightclerk.shared import broker
from nightclerk.shared.celery_app import make_celery
from nightclerk.shared.errors import BrokerUnavailable
from nightclerk.shared.ledger import ChunkLedger
from nightclerk.shared.messages import PROCESS_CHUNK_TASK, ChunkMessage
from nightclerk.shared.redis_conn import safe_url
from nightclerk.shared.retrying import retry_transient
from nightclerk.shared.settings import Settings
from nightclerk.shared.signing import sign

T = TypeVar("T")


class ChunkSender:
    def __init__(self, settings: Settings, app: Celery | None = None) -> None:
        self.settings = settings
        self.queue = settings.queue
        self._owns_app = app is None
        self.app = app if app is not None else make_celery(settings)
        self.ledger = ChunkLedger(broker.client(settings, timeout=5.0), settings.queue)

    def send_new(self, chunk: ChunkMessage) -> None:
        """Sign, record and send a chunk; its Celery task id is the chunk id."""
        message = chunk.model_dump(mode="json")
        key = self.settings.message_signing_key
        signature = sign(key, message) if key is not None else None
        with self._naming_the_queue():
            self._patiently(lambda: self.ledger.record(chunk.chunk_id, message, signature))
            self._publish(
                chunk.chunk_id, message, signature, summary=f"{len(chunk.documents)} {chunk.kind} documents"
            )

    def send_again(
        self,
        chunk_id: str,
        message: dict[str, Any],
        signature: str | None,
        *,
        countdown: float | None = None,
        deferrals: int = 0,
    ) -> None:
        """Send a chunk anew, as it was signed, after ``countdown`` seconds."""
        with self._naming_the_queue():
            self._patiently(lambda: self.ledger.resent(chunk_id))
            self._publish(
                chunk_id, message, signature, countdown=countdown, deferrals=deferrals, summary="resent"
            )

    @contextmanager
    def _naming_the_queue(self) -> Iterator[None]:
        """A :class:`BrokerUnavailable` from either step says which queue on which Redis it was."""
        try:
            yield
        except BrokerUnavailable as exc:
            where = f"queue {self.queue} at {safe_url(self.settings.redis_url)}"
            raise BrokerUnavailable(f"{exc}: {where}") from None

    def _publish(
        self,
        chunk_id: str,
        message: dict[str, Any],
        signature: str | None,
        *,
        summary: str,
        countdown: float | None = None,
        deferrals: int = 0,
    ) -> None:
        kwargs: dict[str, Any] = {"signature": signature} if signature is not None else {}
        if deferrals:
            kwargs["deferrals"] = deferrals
        try:
            self.app.send_task(
                PROCESS_CHUNK_TASK,
                args=[message],
                kwargs=kwargs,
                queue=self.queue,
                task_id=chunk_id,
                countdown=countdown,
                # Celery would otherwise put a repr of the arguments -- document text -- in the headers.
                argsrepr=f"[<chunk {chunk_id}: {summary}>]",
                kwargsrepr="{signed}" if signature is not None else "{}",
            )
        except (OperationalError, RedisError, OSError) as exc:
            raise BrokerUnavailable(f"sending failed ({type(exc).__name__})") from None

    def _patiently(self, step: Callable[[], T]) -> T:
        return retry_transient(
            step, budget_s=self.settings.publish_retry_s, first_wait_s=0.2, longest_wait_s=2.0
        )

    def close(self) -> None:
        self.ledger.client.close()
        if self._owns_app:
            self.app.close()
