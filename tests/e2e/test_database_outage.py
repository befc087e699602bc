"""The database goes away for 30 seconds mid-run -- a PostgreSQL cluster of the test's own, stopped with
``pg_ctl -m immediate`` (as a crash or a failover would) and started again.

The workers hold their chunks and retry the store in place with backoff; nothing is handed back in a loop,
nothing is dead-lettered, and every accepted document ends with exactly one row per task. A chunk held past
the visibility timeout meanwhile is handed to the other worker by Redis, which finds it leased and sends
it back for later.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

DOCUMENTS = 3_000
OUTAGE_S = 30.0


def test_a_30_second_database_outage_mid_run_loses_and_duplicates_nothing(
    private_postgres: Any,
    cluster_env: dict[str, str],
    make_cluster: Callable[[dict[str, str]], Any],
    tickets: Callable[[int], Path],
    summarizing_packs: Path,
    push: Callable[..., Any],
    wait_for: Callable[..., Any],
) -> None:
    env = {**cluster_env, "database_url": private_postgres.url, "packs_dir": str(summarizing_packs),
           "chunk_docs": "20"}  # fmt: skip
    env.pop("database_schema")
    cluster = make_cluster(env)
    store = cluster.store()
    push(tickets(DOCUMENTS), env, "--tasks", "classify,summarize")
    try:
        for name in ("a", "b"):
            cluster.start(name)
        wait_for(lambda: store.count() >= 400, 120, "the run to be under way", every=0.1)
        private_postgres.stop("immediate")
        down_at = time.monotonic()
        time.sleep(OUTAGE_S)
        assert sorted(cluster.alive()) == ["a", "b"]
        private_postgres.start()
        down_s = time.monotonic() - down_at
        wait_for(lambda: store.count() >= 2 * DOCUMENTS, 300, "every result", every=1)
        wait_for(cluster.drained, 120, "the queue to drain")
        rows = list(store.rows())
        letters = cluster.dead_letters(store).letters()
        alive = cluster.alive()
    finally:
        cluster.stop_all()
        store.close()

    keys = [(r.document_id, r.task) for r in rows]
    waits = [e for e in cluster.events("outage_waiting") if e["operation"] in ("store", "dead_letters")]
    deferred = [e["reason"] for e in cluster.events("chunk_deferred")]
    print(
        f"\ndatabase outage: {DOCUMENTS} documents x 2 tasks; PostgreSQL down {down_s:.1f} s mid-run; "
        f"{len(rows)} rows, lost {2 * DOCUMENTS - len(set(keys))}, duplicated {len(keys) - len(set(keys))}; "
        f"store retries in place {len(waits)} (longest wait {max(e['next_wait_s'] for e in waits):.1f} s), "
        f"chunks sent back for an outage {deferred.count('outage')}, copies handed out past the visibility "
        f"timeout and sent back for their lease {deferred.count('lease_held')}, dead letters {len(letters)}"
    )
    assert down_s >= OUTAGE_S
    assert len(keys) == len(set(keys)) == 2 * DOCUMENTS and letters == []
    assert sorted(alive) == ["a", "b"]
    assert len(waits) >= 4 and "outage" not in deferred  # waited in place with backoff, no churn
