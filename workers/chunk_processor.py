"""Turn one chunk message into stored result rows, one per document per task.

Documents that already have a result for this task and pack version are skipped (a redelivered or re-pushed
chunk costs a lookup, not inference). A batch that fails is retried document by document so one bad
document does not sink its chunk. After the rows are committed, every document of the chunk that has a row
for the task -- stored now or before -- is announced on the change feed (``shared/change_feed.py``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

from nightclerk.shared.change_feed import Announcement, ChangeFeed
from nightclerk.shared.documents import EhrNote, Literature, RepairTicket
from nightclerk.shared.errors import InferenceError
from nightclerk.shared.logging import get_logger
from nightclerk.shared.messages import ChunkMessage
from nightclerk.shared.results import LabelScore, ResultRow, Timings
from nightclerk.shared.store import ResultStore
from nightclerk.workers import metrics
from nightclerk.workers.classifier import ClassifierRuntime
from nightclerk.workers.pack_registry import PackRegistry, Summarizer

log = get_logger(__name__)
AnyDocument = EhrNote | RepairTicket | Literature
Runtime = ClassifierRuntime | Summarizer
DONE_EVENTS = {"classify": "chunk_classified", "summarize": "chunk_summarized"}


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


class ChunkProcessor:
    def __init__(
        self,
        registry: PackRegistry,
        store: ResultStore,
        worker_id: str,
        top_k: int = 5,
        *,
        feed: ChangeFeed | None = None,
    ) -> None:
        self.registry = registry
        self.store = store
        self.worker_id = worker_id
        self.top_k = top_k
        self.feed = feed

    def process(self, chunk: ChunkMessage) -> ChunkOutcome:
        queue_ms = max((datetime.now(UTC) - chunk.pushed_at).total_seconds() * 1000, 0.0)
        outcome = ChunkOutcome(chunk.chunk_id, len(chunk.documents), 0, 0, [])
        for task in chunk.tasks:
            self._run(task, chunk, queue_ms, outcome)
        metrics.CHUNKS.labels(kind=chunk.kind).inc()
        return outcome

    def _run(self, task: str, chunk: ChunkMessage, queue_ms: float, outcome: ChunkOutcome) -> None:
        runtime: Runtime = (
            self.registry.classifier_for(chunk.kind)
            if task == "classify"
            else self.registry.summarizer_for(chunk.kind)
        )
        done = self.store.existing((d.id for d in chunk.documents), task, runtime.version)
        pending = [d for d in chunk.documents if d.id not in done]
        outcome.skipped += len(chunk.documents) - len(pending)
        started = time.perf_counter()
        rows, failed = self._rows_for(runtime, pending, chunk.chunk_id, queue_ms)
        inference_s = time.perf_counter() - started
        outcome.failed.extend(failed)
        outcome.stored += self.store.upsert(rows)
        _count(task, runtime.name, chunk, len(pending), len(rows), len(failed), inference_s)
        if self.feed is not None:  # after the commit: announce what is stored, including what already was
            stored = done | {row.document_id for row in rows}
            self.feed.announce(
                [
                    Announcement(d.id, d.kind, task, runtime.name, runtime.version, chunk.chunk_id)
                    for d in chunk.documents
                    if d.id in stored
                ]
            )
        log.info(
            DONE_EVENTS[task],
            chunk_id=chunk.chunk_id,
            kind=chunk.kind,
            pack=runtime.name,
            pack_version=runtime.version,
            documents=len(chunk.documents),
            inferred=len(rows),
            skipped=len(chunk.documents) - len(pending),
            failed=len(failed),
            elapsed_ms=round((time.perf_counter() - started) * 1000, 1),
        )

    def _rows_for(
        self, runtime: Runtime, documents: list[AnyDocument], chunk_id: str, queue_ms: float
    ) -> tuple[list[ResultRow], list[str]]:
        if not documents:
            return [], []
        try:
            if not isinstance(runtime, ClassifierRuntime):
                return self._summarize(runtime, documents, chunk_id, queue_ms), []
            return self._infer(runtime, documents, chunk_id, queue_ms), []
        except InferenceError:
            if len(documents) == 1:
                log.error(
                    "document_failed", document_id=documents[0].id, pack=runtime.name, task=runtime.task
                )
                return [], [documents[0].id]
        rows: list[ResultRow] = []
        failed: list[str] = []
        for document in documents:
            more_rows, more_failed = self._rows_for(runtime, [document], chunk_id, queue_ms)
            rows.extend(more_rows)
            failed.extend(more_failed)
        return rows, failed

    def _infer(
        self, runtime: ClassifierRuntime, documents: list[AnyDocument], chunk_id: str, queue_ms: float
    ) -> list[ResultRow]:
        classified = runtime.classify([d.text for d in documents])
        k = min(self.top_k, len(runtime.labels))
        rows = []
        for i, document in enumerate(documents):
            probs = classified.probabilities[i]
            top = probs.argsort()[::-1][:k]
            timings = Timings(
                queue_ms=round(queue_ms, 2),
                tokenize_ms=round(float(classified.tokenize_ms[i]), 3),
                infer_ms=round(float(classified.infer_ms[i]), 3),
            )
            labels = [LabelScore(label=runtime.labels[j], score=round(float(probs[j]), 6)) for j in top]
            rows.append(self._row(runtime, document, chunk_id, timings, labels=labels))
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
