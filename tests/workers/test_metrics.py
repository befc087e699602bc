"""Worker metrics: what a processed chunk counts, and the /metrics endpoint as Prometheus scrapes it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from nightclerk.shared.documents import EhrNote
from nightclerk.shared.messages import ChunkMessage
from nightclerk.shared.settings import Settings
from nightclerk.shared.store import ResultStore
from nightclerk.workers import metrics
from nightclerk.workers.chunk_processor import ChunkProcessor
from nightclerk.workers.device import Placement
from nightclerk.workers.pack_registry import PackRegistry

CPU = Placement("cpu", ["CPUExecutionProvider"])
STORED = {"task": "classify", "kind": "ehr_note", "outcome": "stored"}
SKIPPED = {**STORED, "outcome": "skipped"}


def value(name: str, labels: dict[str, str] | None = None) -> float:
    return metrics.REGISTRY.get_sample_value(name, labels or {}) or 0.0


@pytest.fixture
def processor(tiny_packs: Path, tmp_path: Path) -> Iterator[ChunkProcessor]:
    store = ResultStore(f"sqlite:///{tmp_path / 'results.db'}")
    store.create_schema()
    yield ChunkProcessor(PackRegistry(Settings(packs_dir=tiny_packs), placement=CPU), store, "w-test")
    store.close()


def chunk(n: int) -> ChunkMessage:
    notes = [EhrNote(source="m", source_id=f"n{i}", text=f"knee note {i}") for i in range(n)]
    return ChunkMessage(tasks=["classify"], documents=notes)


def test_a_chunk_counts_its_documents_batches_and_latencies(processor: ChunkProcessor) -> None:
    before = {
        "stored": value("nightclerk_documents_total", STORED),
        "skipped": value("nightclerk_documents_total", SKIPPED),
        "chunks": value("nightclerk_chunks_total", {"kind": "ehr_note"}),
        "batches": value("nightclerk_inference_batch_documents_count", {"task": "classify"}),
        "batch_docs": value("nightclerk_inference_batch_documents_sum", {"task": "classify"}),
        "e2e": value("nightclerk_end_to_end_seconds_count", {"task": "classify"}),
    }
    processor.process(chunk(5))
    processor.process(chunk(7))  # 5 already stored
    assert value("nightclerk_documents_total", STORED) - before["stored"] == 7
    assert value("nightclerk_documents_total", SKIPPED) - before["skipped"] == 5
    assert value("nightclerk_chunks_total", {"kind": "ehr_note"}) - before["chunks"] == 2
    assert value("nightclerk_inference_batch_documents_count", {"task": "classify"}) - before["batches"] == 2
    assert value("nightclerk_inference_batch_documents_sum", {"task": "classify"}) - before["batch_docs"] == 7
    assert value("nightclerk_end_to_end_seconds_count", {"task": "classify"}) - before["e2e"] == 2
    assert value("nightclerk_inference_seconds_count", {"task": "classify", "pack": "ehr-specialty"}) >= 2


def test_the_endpoint_serves_every_family_and_the_queue_depth(
    redis_url: str, queue_name: str, free_port: Callable[[], int]
) -> None:
    port = free_port()
    client = redis.Redis.from_url(redis_url)
    client.lpush(queue_name, "a", "b", "c")  # three messages waiting
    metrics.serve(port, Settings(redis_url=redis_url, queue=queue_name))
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    families = {family.name: family for family in text_string_to_metric_families(text)}
    for name in ("nightclerk_documents", "nightclerk_chunks", "nightclerk_failures",
                 "nightclerk_inference_batch_documents", "nightclerk_inference_seconds",
                 "nightclerk_end_to_end_seconds", "nightclerk_queue_depth", "nightclerk_chunks_deferred",
                 "nightclerk_chunks_recovered", "nightclerk_dead_letters"):  # fmt: skip
        assert name in families, name
    (depth,) = families["nightclerk_queue_depth"].samples
    assert depth.labels == {"queue": queue_name} and depth.value == 3
    reasons = {
        s.labels["reason"] for s in families["nightclerk_failures"].samples if s.name.endswith("_total")
    }
    assert reasons == set(metrics.FAILURE_REASONS)
    # the first test processed "knee note" documents m:n0..: labels carry kinds and tasks, never text or ids
    assert "knee" not in text and "m:n0" not in text
    client.close()
