"""A chunk that runs longer than the visibility timeout is handed out again by Redis -- and not run twice.

The test holds an exclusive lock on the results table for 25 s, so the worker that takes the chunk infers
it and then waits on its write, well past the 10 s visibility timeout. Redis hands the chunk to the other
worker, which finds its lease held and sends it back for later, again and again, until the first worker
has stored the results; then the copy finds them stored. One row per document, one inference per document.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

pytestmark = pytest.mark.slow

DOCUMENTS = 10
HOLD_S = 25.0


def test_a_chunk_past_the_visibility_timeout_is_run_once(
    cluster_env: dict[str, str],
    make_cluster: Callable[[dict[str, str]], Any],
    tickets: Callable[[int], Path],
    postgres_url: str,
    push: Callable[..., Any],
    wait_for: Callable[..., Any],
) -> None:
    cluster = make_cluster(cluster_env)
    store = cluster.store()
    schema = cluster_env["database_schema"]
    engine = sa.create_engine(postgres_url)
    try:
        for name in ("a", "b"):
            cluster.start(name)
        with engine.connect() as blocker:
            blocker.execute(sa.text(f'LOCK TABLE "{schema}".results IN EXCLUSIVE MODE'))  # writes wait
            locked_at = time.monotonic()
            push(tickets(DOCUMENTS), cluster_env)
            wait_for(lambda: cluster.events("chunk_deferred"), 60, "the copy Redis hands out to be sent back")
            time.sleep(max(0.0, HOLD_S - (time.monotonic() - locked_at)))
            assert store.count() == 0
            blocker.rollback()  # the lock goes; the first worker's write goes through
        wait_for(lambda: store.count() >= DOCUMENTS, 60, "the results")
        wait_for(cluster.drained, 60, "the queue to drain")
        time.sleep(2)  # let a copy still on its way arrive
        rows = list(store.rows())
    finally:
        cluster.stop_all()
        store.close()
        engine.dispose()

    deferred = cluster.events("chunk_deferred")
    received = [e for e in cluster.events() if e["event"].endswith("] received")]
    classified = cluster.events("chunk_classified")
    print(
        f"\nlong chunk: {DOCUMENTS} documents held {HOLD_S:.0f} s by a table lock against a 10 s visibility "
        f"timeout; delivered {len(received)} times, sent back {len(deferred)} times for its lease "
        f"({sorted({e['reason'] for e in deferred})}); {len(rows)} rows; inferences "
        f"{sum(e['inferred'] for e in classified)}"
    )
    assert len(rows) == len({r.document_id for r in rows}) == DOCUMENTS
    assert len({r.chunk_id for r in rows}) == 1
    assert {e["reason"] for e in deferred} == {"lease_held"}
    assert len(received) >= 2  # Redis did hand it out again while it ran
    assert sum(e["inferred"] for e in classified) == DOCUMENTS  # ... and it ran once
