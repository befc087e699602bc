"""Bulk export of the result store to Apache Parquet, for warehouses and notebooks.

pyarrow writes it in row groups of ``batch_rows`` as rows stream out of the store, so memory stays bounded
whatever the size of the store. The schema is explicit (below), so an empty export still has the columns and
every export has the same types: labels are a list of (label, score) structs, timings are three columns, the
time is UTC.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from nightclerk.shared.results import ResultRow

LABEL = pa.struct([("label", pa.string()), ("score", pa.float64())])
SCHEMA = pa.schema(
    [
        ("document_id", pa.string()),
        ("kind", pa.string()),
        ("task", pa.string()),
        ("pack_name", pa.string()),
        ("pack_version", pa.string()),
        ("precision", pa.string()),
        ("top_label", pa.string()),
        ("top_score", pa.float64()),
        ("labels", pa.list_(LABEL)),
        ("summary", pa.string()),
        ("queue_ms", pa.float64()),
        ("tokenize_ms", pa.float64()),
        ("infer_ms", pa.float64()),
        ("worker_id", pa.string()),
        ("chunk_id", pa.string()),
        ("created_at", pa.timestamp("us", tz="UTC")),
    ]
)


def _columns(rows: list[ResultRow]) -> dict[str, list[Any]]:
    return {
        "document_id": [r.document_id for r in rows],
        "kind": [r.kind for r in rows],
        "task": [r.task for r in rows],
        "pack_name": [r.pack_name for r in rows],
        "pack_version": [r.pack_version for r in rows],
        "precision": [r.precision for r in rows],
        "top_label": [r.top_label for r in rows],
        "top_score": [r.top_score for r in rows],
        "labels": [[label.model_dump() for label in r.labels] for r in rows],
        "summary": [r.summary for r in rows],
        "queue_ms": [r.timings.queue_ms for r in rows],
        "tokenize_ms": [r.timings.tokenize_ms for r in rows],
        "infer_ms": [r.timings.infer_ms for r in rows],
        "worker_id": [r.worker_id for r in rows],
        "chunk_id": [r.chunk_id for r in rows],
        "created_at": [r.created_at for r in rows],
    }


def _batches(rows: Iterable[ResultRow], size: int) -> Iterator[list[ResultRow]]:
    batch: list[ResultRow] = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def export_parquet(rows: Iterable[ResultRow], path: Path, *, batch_rows: int = 10_000) -> int:
    """Write ``rows`` to ``path`` (replaced only once complete); how many were written."""
    partial = path.with_name(path.name + ".partial")
    written = 0
    with pq.ParquetWriter(partial, SCHEMA, compression="zstd") as writer:
        for batch in _batches(rows, batch_rows):
            writer.write_table(pa.Table.from_pydict(_columns(batch), schema=SCHEMA))
            written += len(batch)
    partial.replace(path)
    return written
