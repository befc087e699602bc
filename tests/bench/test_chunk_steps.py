"""The chunk profile runs the task's own path on real Redis and PostgreSQL and accounts for every step."""

from __future__ import annotations

from pathlib import Path

import redis

from bench.chunk_steps import QUEUE, STEPS, profile, report, wire_body
from nightclerk.shared.documents import EhrNote
from nightclerk.shared.messages import ChunkMessage
from nightclerk.shared.settings import Settings


def chunk(start: int, n: int) -> ChunkMessage:
    notes = [
        EhrNote(source="t", source_id=f"n{i}", text=f"note {i} on the knee") for i in range(start, start + n)
    ]
    return ChunkMessage(tasks=["classify"], documents=notes)


def test_every_step_is_timed_and_every_document_announced(
    tiny_packs: Path, redis_url: str, postgres_url: str, pg_schema: str
) -> None:
    settings = Settings(
        packs_dir=tiny_packs,
        redis_url=redis_url,
        queue=QUEUE,
        feed_stream=f"{QUEUE}:results",
        database_url=postgres_url,
        database_schema=pg_schema,
    )
    timed = [wire_body(chunk(0, 20)), wire_body(chunk(20, 12))]
    steps, documents, variant = profile(settings, timed, [wire_body(chunk(100, 4))])
    assert documents == 32 and variant.startswith("ehr-specialty ")
    assert list(steps) == list(STEPS) and all(seconds >= 0 for seconds in steps.values())
    assert steps["ONNX Runtime run"] > 0 and steps["store: upsert()"] > 0
    client = redis.Redis.from_url(redis_url)
    assert client.xlen(settings.feed_stream) == 36  # the warm chunk's 4 and the timed 32, announced
    client.delete(settings.feed_stream)
    table = report("notes", variant, steps, documents, 2)
    assert all(f"| {step} |" in table for step in STEPS) and "32 documents in 2 chunks" in table
