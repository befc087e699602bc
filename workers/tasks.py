"""The Celery task that processes a chunk. Its name is ``nightclerk.shared.messages.PROCESS_CHUNK_TASK``."""

from __future__ import annotations

import os
import socket
from typing import Any

from celery import Task
from pydantic import ValidationError

from nightclerk.shared.celery_app import get_app
from nightclerk.shared.change_feed import ChangeFeed
from nightclerk.shared.errors import FeedUnavailable, PackNotFound, StoreUnavailable
from nightclerk.shared.logging import get_logger
from nightclerk.shared.messages import PROCESS_CHUNK_TASK, ChunkMessage
from nightclerk.shared.settings import get_settings
from nightclerk.shared.store import open_store
from nightclerk.workers import metrics
from nightclerk.workers.chunk_processor import ChunkProcessor
from nightclerk.workers.pack_registry import PackRegistry

log = get_logger(__name__)
app = get_app()
_processor: ChunkProcessor | None = None
PACK_MISSING_RETRY_S = 60


def install_processor(processor: ChunkProcessor) -> None:
    global _processor
    _processor = processor


def get_processor() -> ChunkProcessor:
    """The process's processor; built from settings on first use when the worker was started by ``celery``."""
    global _processor
    if _processor is None:
        settings = get_settings()
        worker_id = f"{socket.gethostname()}-{os.getpid()}"
        feed = ChangeFeed.from_settings(settings)
        _processor = ChunkProcessor(
            PackRegistry(settings), open_store(settings), worker_id, settings.top_k_labels, feed=feed
        )
    return _processor


@app.task(  # type: ignore[untyped-decorator]
    name=PROCESS_CHUNK_TASK,
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(StoreUnavailable, FeedUnavailable),
    retry_backoff=2,
    retry_backoff_max=300,
    retry_jitter=True,
    max_retries=None,
)
def process_chunk(self: Task, message: dict[str, Any]) -> dict[str, object]:
    try:
        chunk = ChunkMessage.model_validate(message)
    except ValidationError as exc:
        # A malformed message cannot become valid by retrying; the producer validates, so this is a bug or
        # a foreign sender. Locations only: the message may hold document text.
        locations = [".".join(str(p) for p in error["loc"]) for error in exc.errors(include_input=False)[:5]]
        log.error("message_invalid", task_id=self.request.id, errors=exc.error_count(), at=locations)
        metrics.FAILURES.labels(reason="message_invalid").inc()
        return {"rejected": True}
    try:
        return get_processor().process(chunk).as_dict()
    except StoreUnavailable:
        metrics.FAILURES.labels(reason="store_unavailable").inc()
        raise  # autoretry_for: the chunk runs again after a backoff
    except FeedUnavailable:
        metrics.FAILURES.labels(reason="feed_unavailable").inc()
        raise
    except PackNotFound as exc:
        metrics.FAILURES.labels(reason="pack_missing").inc()
        log.error(
            "pack_missing",
            chunk_id=chunk.chunk_id,
            kind=chunk.kind,
            reason=str(exc),
            retry_in_s=PACK_MISSING_RETRY_S,
        )
        raise self.retry(countdown=PACK_MISSING_RETRY_S, exc=exc) from None
