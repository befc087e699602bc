"""Three worker processes on one queue, as three hosts would run them: exact results, no double work.

Each worker has its own name, metrics port and connections; nothing but Redis and the store is shared.
Every accepted document gets one row per task, each document is inferred once per task over all workers,
and the work is spread over all three.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

DOCUMENTS = 3_000
WORKERS = ("host-a", "host-b", "host-c")


def test_three_workers_share_a_queue_without_double_processing(
    cluster_env: dict[str, str],
    make_cluster: Callable[[dict[str, str]], Any],
    tickets: Callable[[int], Path],
    summarizing_packs: Path,
    push: Callable[..., Any],
    wait_for: Callable[..., Any],
) -> None:
    env = {**cluster_env, "packs_dir": str(summarizing_packs), "chunk_docs": "25"}
    cluster = make_cluster(env)
    store = cluster.store()
    try:
        for name in WORKERS:
            cluster.start(name)
        push(tickets(DOCUMENTS), env, "--tasks", "classify,summarize")
        wait_for(lambda: store.count() >= 2 * DOCUMENTS, 300, "every result", every=1)
        wait_for(cluster.drained, 60, "the queue to drain")
        rows = list(store.rows())
    finally:
        cluster.stop_all()
        store.close()

    keys = [(r.document_id, r.task) for r in rows]
    per_worker = Counter(r.worker_id for r in rows if r.task == "classify")
    classified = sum(e["inferred"] for e in cluster.events("chunk_classified"))
    summarized = sum(e["inferred"] for e in cluster.events("chunk_summarized"))
    print(
        f"\nscale-out: {DOCUMENTS} documents x 2 tasks over {len(WORKERS)} workers; {len(rows)} rows, "
        f"duplicated {len(keys) - len(set(keys))}; inferences classify {classified}, summarize {summarized}; "
        f"documents per worker {sorted(per_worker.values())}"
    )
    assert len(keys) == len(set(keys)) == 2 * DOCUMENTS
    assert (classified, summarized) == (DOCUMENTS, DOCUMENTS)  # nothing ran twice
    assert len(per_worker) == len(WORKERS) and min(per_worker.values()) > 0
