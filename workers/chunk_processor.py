"""Turn one chunk message into stored result rows, one per document per task -- or dead letters.

Documents that already have a result for this task and pack version are skipped (a redelivered or re-pushed
chunk costs a lookup, not inference). A batch that fails is split until the documents that make it fail are
found (``isolation.py``); each is tried ``document_attempts`` times alone, then written to the dead letters
with its reason, and the rest of the chunk is stored. Rows the store refuses are found by halving too.
Store and Redis calls wait out an outage in place (``patience.py``). After the rows are committed, every
document of the chunk that has a row for the task -- stored now or before -- is announced on the change
feed (``shared/change_feed.py``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

import numpy as np

from nightclerk.shared.change_feed import Announcement, ChangeFeed
from nightclerk.shared.documents import EhrNote, Literature, RepairTicket
from nightclerk.shared.errors import NightclerkError, StoreError, StoreUnavailable
from nightclerk.shared.logging import get_logger
from nightclerk.shared.messages import ChunkMessage
from nightclerk.shared.results import LabelScore, ResultRow, Timings
from nightclerk.shared.store import DeadLetterStore, Failure, ResultStore
from nightclerk.workers import metrics
from nightclerk.workers.classifier import ClassifierRuntime
from nightclerk.workers.isolation import run_isolated
from nightclerk.workers.pack_registry import PackRegistry, Summarizer
from nightclerk.workers.patience import Patience

log = get_logger(__name__)
AnyDocument = EhrNote | RepairTicket | Literature
Runtime = ClassifierRuntime | Summarizer
DONE_EVENTS = {"classify": "chunk_classified", "summarize": "chunk_summarized"}
T = TypeVar("T")


@dataclass
class ChunkOutcome:
    chunk_id: str
    documents: int
    stored: int
    skipped: int
    failed: list[str]

    def as_dict(self) -> dict[str, object]:
        return {
            "chunk_id": self.chunk_id,
            "documents": self.documents,
            "stored": self.stored,
            "skipped": self.skipped,
            "failed": len(self.failed),
        }


def _count(
    task: str, pack: str, chunk: ChunkMessage, inferred: int, stored: int, failed: int, inference_s: float
) -> None:
    """The worker's metrics for one task of one chunk (``workers/metrics.py``)."""
    documents = metrics.DOCUMENTS
    documents.labels(task=task, kind=chunk.kind, outcome="stored").inc(stored)
    documents.labels(task=task, kind=chunk.kind, outcome="skipped").inc(len(chunk.documents) - inferred)
    documents.labels(task=task, kind=chunk.kind, outcome="failed").inc(failed)
    metrics.FAILURES.labels(reason="inference_error").inc(failed)
    if inferred:
        metrics.BATCH_DOCUMENTS.labels(task=task).observe(inferred)
        metrics.INFERENCE_SECONDS.labels(task=task, pack=pack).observe(inference_s)
    if stored:  # push to stored; a chunk whose documents were all stored before stores nothing now
        age_s = (datetime.now(UTC) - chunk.pushed_at).total_seconds()
        metrics.END_TO_END_SECONDS.labels(task=task).observe(max(age_s, 0.0))


def _count_dead_letters(failures: list[Failure], chunk: ChunkMessage) -> None:
    for failure in failures:
        metrics.DEAD_LETTERS.labels(task=failure.task, kind=chunk.kind).inc()
        log.error(
            "document_dead_lettered",
            document_id=failure.document.id,
            chunk_id=chunk.chunk_id,
            task=failure.task,
            pack=failure.pack_name,
            attempts=failure.attempts,
            reason=failure.reason,
        )


def _refused_by_store(exc: BaseException) -> bool:
    return isinstance(exc, StoreError) and not isinstance(exc, StoreUnavailable)


class ChunkProcessor:
    def __init__(
        self,
        registry: PackRegistry,
        store: ResultStore,
        worker_id: str,
        top_k: int = 5,
        *,
        feed: ChangeFeed | None = None,
        patience: Patience | None = None,
        document_attempts: int = 3,
        retry_backoff_s: float = 0.5,
    ) -> None:
        self.registry = registry
        self.store = store
        self.dead_letters = DeadLetterStore(store)
        self.worker_id = worker_id
        self.top_k = top_k
        self.feed = feed
        self.patience = patience or Patience(0.0)  # no waiting unless the worker asks for it
        self.document_attempts = document_attempts
        self.retry_backoff_s = retry_backoff_s

    def process(self, chunk: ChunkMessage) -> ChunkOutcome:
        queue_ms = max((datetime.now(UTC) - chunk.pushed_at).total_seconds() * 1000, 0.0)
        outcome = ChunkOutcome(chunk.chunk_id, len(chunk.documents), 0, 0, [])
        for task in chunk.tasks:
            self._run(task, chunk, queue_ms, outcome)
        metrics.CHUNKS.labels(kind=chunk.kind).inc()
        return outcome

    def dead_letter_chunk(self, chunk: ChunkMessage, reason: str) -> int:
        """Give up on every document of the chunk that has no result yet, for every task; how many.

        For an error the worker cannot place on one document (a bug, a statement the store refuses): the
        documents wait in the dead letters for an operator instead of being acknowledged away.
        """
        return sum(self._dead_letter_task(chunk, task, reason) for task in chunk.tasks)

    def _dead_letter_task(self, chunk: ChunkMessage, task: str, reason: str) -> int:
        try:
            runtime = self._runtime(task, chunk.kind)
            name, version = runtime.name, runtime.version
        except NightclerkError:
            name, version = "unknown", "unknown"
        ids = [d.id for d in chunk.documents]
        done = self._patient(lambda: self.store.existing(ids, task, version), "store", chunk)
        failures = [Failure(d, task, name, version, reason, 1) for d in chunk.documents if d.id not in done]
        self._record(failures, chunk)
        return len(failures)

    def _record(self, failures: list[Failure], chunk: ChunkMessage) -> None:
        if not failures:
            return
        self._patient(
            lambda: self.dead_letters.record(failures, chunk_id=chunk.chunk_id, worker_id=self.worker_id),
            "dead_letters",
            chunk,
        )
        _count_dead_letters(failures, chunk)

    def _runtime(self, task: str, kind: str) -> Runtime:
        if task == "classify":
            return self.registry.classifier_for(kind)
        return self.registry.summarizer_for(kind)

    def _patient(self, operation: Callable[[], T], what: str, chunk: ChunkMessage) -> T:
        return self.patience.call(operation, what=what, chunk_id=chunk.chunk_id)

    def _run(self, task: str, chunk: ChunkMessage, queue_ms: float, outcome: ChunkOutcome) -> None:
        runtime = self._runtime(task, chunk.kind)
        ids = [d.id for d in chunk.documents]
        done = self._patient(lambda: self.store.existing(ids, task, runtime.version), "store", chunk)
        pending = [d for d in chunk.documents if d.id not in done]
        outcome.skipped += len(chunk.documents) - len(pending)
        started = time.perf_counter()
        isolated = run_isolated(
            lambda documents: self._rows(runtime, documents, chunk.chunk_id, queue_ms),
            pending,
            attempts=self.document_attempts,
            backoff_s=self.retry_backoff_s,
        )
        inference_s = time.perf_counter() - started
        new_rows, refused = self._store(isolated.results, chunk)
        rows = [row for row in isolated.results if row.document_id not in refused]
        outcome.stored += new_rows
        by_id = {d.id: d for d in pending}
        failures = [
            Failure(document, task, runtime.name, runtime.version, reason, attempts)
            for document, reason, attempts in isolated.failures
        ] + [Failure(by_id[i], task, runtime.name, runtime.version, why, 1) for i, why in refused.items()]
        self._record(failures, chunk)
        outcome.failed.extend(f.document.id for f in failures)
        _count(task, runtime.name, chunk, len(pending), len(rows), len(failures), inference_s)
        if self.feed is not None:  # after the commit: announce what is stored, including what already was
            feed = self.feed
            stored = done | {row.document_id for row in rows}
            announcements = [
                Announcement(d.id, d.kind, task, runtime.name, runtime.version, chunk.chunk_id)
                for d in chunk.documents
                if d.id in stored
            ]
            self._patient(lambda: feed.announce(announcements), "feed", chunk)
        log.info(
            DONE_EVENTS[task],
            chunk_id=chunk.chunk_id,
            kind=chunk.kind,
            pack=runtime.name,
            pack_version=runtime.version,
            chunk_documents=len(chunk.documents),  # not "documents": the log drops keys that may hold text
            inferred=len(rows),
            skipped=len(chunk.documents) - len(pending),
            failed=len(failures),
            elapsed_ms=round((time.perf_counter() - started) * 1000, 1),
        )

    def _store(self, rows: list[ResultRow], chunk: ChunkMessage) -> tuple[int, dict[str, str]]:
        """Store rows; how many were new, and the ones the store refuses (not an outage: a constraint, a value
        it cannot hold), found by halving like documents that fail inference, by document id with the reason.
        """
        written = run_isolated(
            lambda batch: [self._patient(lambda: self.store.upsert(batch), "store", chunk)],
            rows,
            attempts=1,
            isolate=_refused_by_store,
        )
        refused = {
            row.document_id: f"the store refused its result: {why}" for row, why, _ in written.failures
        }
        return sum(written.results), refused

    def _rows(
        self, runtime: Runtime, documents: list[AnyDocument], chunk_id: str, queue_ms: float
    ) -> list[ResultRow]:
        if isinstance(runtime, ClassifierRuntime):
            return self._infer(runtime, documents, chunk_id, queue_ms)
        return self._summarize(runtime, documents, chunk_id, queue_ms)

    def _infer(
        self, runtime: ClassifierRuntime, documents: list[AnyDocument], chunk_id: str, queue_ms: float
    ) -> list[ResultRow]:
        classified = runtime.classify([d.text for d in documents])
        k = min(self.top_k, len(runtime.labels))
        # The top k of every document at once, as Python numbers: per document, numpy's calls on rows of a
        # dozen labels cost more than the rows themselves (1,024 work orders: ~30 ms a chunk).
        top = np.argsort(classified.probabilities, axis=1, kind="stable")[:, ::-1][:, :k]
        scores = np.take_along_axis(classified.probabilities, top, axis=1).astype(np.float64).tolist()
        top_ids = top.tolist()
        tokenize_ms = classified.tokenize_ms.tolist()
        infer_ms = classified.infer_ms.tolist()
        queue = round(queue_ms, 2)
        labels = runtime.labels
        rows = []
        for i, document in enumerate(documents):
            timings = Timings(
                queue_ms=queue, tokenize_ms=round(tokenize_ms[i], 3), infer_ms=round(infer_ms[i], 3)
            )
            scored = [
                LabelScore(label=labels[j], score=round(score, 6))
                for j, score in zip(top_ids[i], scores[i], strict=True)
            ]
            rows.append(self._row(runtime, document, chunk_id, timings, labels=scored))
        return rows

    def _summarize(
        self, runtime: Summarizer, documents: list[AnyDocument], chunk_id: str, queue_ms: float
    ) -> list[ResultRow]:
        summarized = runtime.summarize([d.text for d in documents], [d.kind for d in documents])
        rows = []
        for i, document in enumerate(documents):
            reason = summarized.reasons[i]
            if reason is not None:  # stored without a summary: the document was seen, there is nothing to say
                log.warning(
                    "document_not_summarized", document_id=document.id, pack=runtime.name, reason=reason
                )
            timings = Timings(
                queue_ms=round(queue_ms, 2), infer_ms=round(float(summarized.generate_ms[i]), 3)
            )
            rows.append(self._row(runtime, document, chunk_id, timings, summary=summarized.summaries[i]))
        return rows

    def _row(
        self,
        runtime: Runtime,
        document: AnyDocument,
        chunk_id: str,
        timings: Timings,
        *,
        labels: list[LabelScore] | None = None,
        summary: str | None = None,
    ) -> ResultRow:
        return ResultRow(
            document_id=document.id,
            kind=document.kind,
            task=runtime.task,
            pack_name=runtime.name,
            pack_version=runtime.version,
            precision=runtime.variant.precision,
            labels=labels or [],
            summary=summary,
            timings=timings,
            worker_id=self.worker_id,
            chunk_id=chunk_id,
        )
