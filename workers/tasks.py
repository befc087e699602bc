"""The Celery task that processes a chunk. Its name is ``nightclerk.shared.messages.PROCESS_CHUNK_TASK``.

What happens to a chunk, whatever comes:

- not a chunk message, or not signed with the signing key (when one is set): logged with locations and
  reasons only, counted, dropped;
- another worker holds its lease (Redis handed it out again while it runs): sent back for later;
- the store or Redis is away: the worker waits in place (``patience.py``), then sends it back with backoff;
- a pack is missing: sent back for a minute later;
- a document fails inference: dead-lettered alone, the rest stored (``chunk_processor.py``);
- any other error: the chunk's unstored documents are dead-lettered with the error's type and place.

A chunk leaves the ledger (``shared/ledger.py``) only once all its documents have a result row or a dead
letter; if anything else befalls it -- a worker killed, a message the broker loses -- the ledger's sweep
sends it again.
"""

from __future__ import annotations

import os
import random
import re
import socket
from dataclasses import dataclass
from typing import Any

from celery import Task
from pydantic import ValidationError

from nightclerk.shared import broker
from nightclerk.shared.celery_app import get_app
from nightclerk.shared.change_feed import ChangeFeed
from nightclerk.shared.chunk_sender import ChunkSender
from nightclerk.shared.errors import (
    BrokerUnavailable,
    FeedUnavailable,
    MessageRefused,
    PackNotFound,
    StoreUnavailable,
    describe,
)
from nightclerk.shared.ledger import ChunkLedger
from nightclerk.shared.logging import get_logger
from nightclerk.shared.messages import PROCESS_CHUNK_TASK, ChunkMessage
from nightclerk.shared.settings import Settings, get_settings
from nightclerk.shared.signing import verify
from nightclerk.shared.store import open_store
from nightclerk.workers import metrics
from nightclerk.workers.chunk_processor import ChunkProcessor
from nightclerk.workers.leases import ChunkLeases
from nightclerk.workers.pack_registry import PackRegistry
from nightclerk.workers.patience import Patience

log = get_logger(__name__)
app = get_app()
PACK_MISSING_RETRY_S = 60
_CHUNK_ID = re.compile(r"[0-9a-f]{32}")  # ChunkMessage.chunk_id's pattern


@dataclass
class WorkerContext:
    """What a worker process keeps between chunks."""

    settings: Settings
    processor: ChunkProcessor
    leases: ChunkLeases
    sender: ChunkSender  # sends a chunk again; its ledger records what each chunk went through

    @property
    def ledger(self) -> ChunkLedger:
        return self.sender.ledger


_context: WorkerContext | None = None


def build_context(settings: Settings, worker_id: str, registry: PackRegistry | None = None) -> WorkerContext:
    store = open_store(settings)
    processor = ChunkProcessor(
        registry or PackRegistry(settings),
        store,
        worker_id,
        settings.top_k_labels,
        feed=ChangeFeed.from_settings(settings),
        patience=Patience(settings.outage_wait_s),
        document_attempts=settings.document_attempts,
    )
    processor.dead_letters.create_schema()
    leases = ChunkLeases(
        broker.client(settings, timeout=5.0), settings.queue, worker_id, settings.lease_ttl_s
    )
    return WorkerContext(settings, processor, leases, ChunkSender(settings, app))


def install_context(context: WorkerContext) -> None:
    global _context
    _context = context


def get_context() -> WorkerContext:
    """The process's context; built from settings on first use when the worker was started by ``celery``."""
    global _context
    if _context is None:
        _context = build_context(get_settings(), f"{socket.gethostname()}-{os.getpid()}")
    return _context


def _accepted(
    task_id: str, message: dict[str, Any], signature: object, settings: Settings
) -> ChunkMessage | None:
    """The chunk, or None for a message that is refused (logged and counted here)."""
    key = settings.message_signing_key
    if key is not None:
        try:
            verify(key, message, signature)
        except MessageRefused as exc:
            log.error("message_refused", task_id=task_id, chunk_id=_chunk_id_of(message), reason=str(exc))
            metrics.FAILURES.labels(reason="message_refused").inc()
            return None
    try:
        return ChunkMessage.model_validate(message)
    except ValidationError as exc:
        # A malformed message cannot become valid by retrying; the producer validates, so this is a bug or
        # a foreign sender. Locations only: the message may hold document text.
        locations = [".".join(str(p) for p in error["loc"]) for error in exc.errors(include_input=False)[:5]]
        log.error("message_invalid", task_id=task_id, errors=exc.error_count(), at=locations)
        metrics.FAILURES.labels(reason="message_invalid").inc()
        return None


def _chunk_id_of(message: object) -> str | None:
    """The chunk id of a message, when it looks like one (a refused message is anyone's: log no free text)."""
    chunk_id = message.get("chunk_id") if isinstance(message, dict) else None
    return chunk_id if isinstance(chunk_id, str) and _CHUNK_ID.fullmatch(chunk_id) else None


def _backoff_s(retries: int, settings: Settings) -> float:
    """Exponential with full jitter, capped: 2, 4, 8 … seconds up to ``retry_backoff_max_s``."""
    return random.uniform(1.0, min(2.0 ** (retries + 1), float(settings.retry_backoff_max_s)))


@app.task(  # type: ignore[untyped-decorator]
    name=PROCESS_CHUNK_TASK,
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
)
def process_chunk(
    self: Task, message: dict[str, Any], signature: str | None = None, deferrals: int = 0
) -> dict[str, object]:
    context = get_context()
    settings = context.settings
    chunk = _accepted(self.request.id, message, signature, settings)
    if chunk is None:
        _forget_refused(context, message, signature)
        return {"rejected": True}
    deferral = _Deferral(context, chunk, message, signature, deferrals)
    try:
        outcome = _process_leased(context, chunk)
    except (StoreUnavailable, FeedUnavailable, BrokerUnavailable) as exc:
        return deferral.send("outage", describe(exc), _backoff_s(deferrals, settings))
    except PackNotFound as exc:
        metrics.FAILURES.labels(reason="pack_missing").inc()
        return deferral.send("pack_missing", str(exc), PACK_MISSING_RETRY_S)
    except Exception as exc:
        return _give_up_on_chunk(context, chunk, exc, deferral)
    if outcome is None:
        return deferral.send(
            "lease_held", f"held by {context.leases.owner(chunk.chunk_id)}", settings.lease_ttl_s
        )
    return outcome


@dataclass
class _Deferral:
    """Sending a chunk back for later, as it came (same id, same signature), to the back of the queue."""

    context: WorkerContext
    chunk: ChunkMessage
    message: dict[str, Any]
    signature: str | None
    deferrals: int

    def send(self, reason: str, detail: str, countdown: float) -> dict[str, object]:
        metrics.CHUNKS_DEFERRED.labels(reason=reason).inc()
        log.warning("chunk_deferred", chunk_id=self.chunk.chunk_id, reason=reason, detail=detail,
                    retry_in_s=round(countdown, 1), deferrals=self.deferrals + 1)  # fmt: skip
        # If this send fails too, the ledger still holds the chunk and its sweep sends it later.
        self.context.sender.send_again(
            self.chunk.chunk_id,
            self.message,
            self.signature,
            countdown=countdown,
            deferrals=self.deferrals + 1,
        )
        return {"chunk_id": self.chunk.chunk_id, "deferred": reason}


def _process_leased(context: WorkerContext, chunk: ChunkMessage) -> dict[str, object] | None:
    """The chunk processed under its lease and off the ledger; None when another worker holds the lease."""
    patience = context.processor.patience
    chunk_id = chunk.chunk_id
    if not patience.call(lambda: context.leases.acquire(chunk_id), what="lease", chunk_id=chunk_id):
        return None
    try:
        patience.call(lambda: context.ledger.begin(chunk_id), what="ledger", chunk_id=chunk_id)
        outcome = context.processor.process(chunk).as_dict()
        patience.call(lambda: context.ledger.done(chunk_id), what="ledger", chunk_id=chunk_id)
        return outcome
    finally:
        context.leases.release(chunk_id)


def _forget_refused(context: WorkerContext, message: object, signature: object) -> None:
    """A refused chunk leaves the ledger when it is the one on record, so the sweep does not resend it."""
    chunk_id = _chunk_id_of(message)
    if chunk_id is None:
        return
    try:
        entry = context.ledger.entry(chunk_id)
        if entry is not None and entry.signature == signature and entry.message == message:
            context.ledger.done(chunk_id)
    except Exception as exc:  # the sweep will try it again, and it will be refused again
        log.warning("ledger_forget_failed", chunk_id=chunk_id, error=type(exc).__name__)


def _give_up_on_chunk(
    context: WorkerContext, chunk: ChunkMessage, exc: Exception, deferral: _Deferral
) -> dict[str, object]:
    reason = f"worker error: {describe(exc)}"
    metrics.FAILURES.labels(reason="worker_error").inc()
    log.error("chunk_failed", chunk_id=chunk.chunk_id, kind=chunk.kind, reason=reason)
    try:
        given_up = context.processor.dead_letter_chunk(chunk, reason)
        context.processor.patience.call(
            lambda: context.ledger.done(chunk.chunk_id), what="ledger", chunk_id=chunk.chunk_id
        )
    except Exception as second:  # the dead letters live in the store too: keep the chunk, try again later
        return deferral.send(
            "outage", f"dead letters: {describe(second)}", _backoff_s(deferral.deferrals, context.settings)
        )
    return {"chunk_id": chunk.chunk_id, "dead_lettered": given_up}
