"""Redis dies mid-run -- SIGKILL, then started again on its data -- while a push and two workers use it.

The test runs its own redis-server with an append-only file fsynced on every write (what a deployment that
must lose nothing runs; see the README). The push in progress retries its sends until Redis is back, the
workers reconnect by themselves, chunks in flight come back once their visibility timeout passes, and every
accepted document ends with exactly one row per task.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis

from nightclerk.cli.worker_process import nightclerk_env

pytestmark = pytest.mark.slow

DOCUMENTS = 3_000
DOWN_S = 4.0


def test_a_redis_restart_mid_run_loses_nothing(
    private_redis: Callable[..., Any],
    cluster_env: dict[str, str],
    make_cluster: Callable[[dict[str, str]], Any],
    tickets: Callable[[int], Path],
    summarizing_packs: Path,
    tmp_path: Path,
    wait_for: Callable[..., Any],
) -> None:
    server = private_redis()
    queue = cluster_env["queue"]
    env = {**cluster_env, "redis_url": server.url, "packs_dir": str(summarizing_packs), "chunk_docs": "10"}
    cluster = make_cluster(env)
    store = cluster.store()
    client = redis.Redis.from_url(server.url)
    for name in ("a", "b"):
        cluster.start(name)
    push = subprocess.Popen(
        [sys.executable, "-m", "nightclerk.cli.main", "push", str(tickets(DOCUMENTS)), "--mapping", "nestor",
         "--tasks", "classify,summarize", "--no-progress", "--rejects", str(tmp_path / "rejects.jsonl")],
        env=nightclerk_env(env, inherit=False), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        wait_for(lambda: client.llen(queue) > 0 or store.count() > 0, 60, "the push to begin", every=0.01)
        pushed_before = int(client.get(f"{queue}:ledger:seq") or 0)
        server.kill()
        time.sleep(DOWN_S)
        server.start()
        _, push_err = push.communicate(timeout=300)
        assert push.returncode == 0, push_err[-3000:]
        pushed_after = int(client.get(f"{queue}:ledger:seq") or 0)
        wait_for(lambda: store.count() >= 2 * DOCUMENTS, 300, "every result", every=1)
        wait_for(cluster.drained, 120, "the queue to drain")
        rows = list(store.rows())
        letters = cluster.dead_letters(store).letters()
        alive = cluster.alive()
    finally:
        push.kill()
        cluster.stop_all()
        store.close()
        client.close()

    keys = [(r.document_id, r.task) for r in rows]
    reconnects = [e for e in cluster.events() if "Connection to broker lost" in e["event"]]
    waits = cluster.events("outage_waiting")
    print(
        f"\nredis restart: {DOCUMENTS} documents x 2 tasks; Redis killed after {pushed_before} of "
        f"{pushed_after} chunks were sent, down {DOWN_S:.0f} s; {len(rows)} rows, lost "
        f"{2 * DOCUMENTS - len(set(keys))}, duplicated {len(keys) - len(set(keys))}; worker reconnects "
        f"{len(reconnects)}, in-place waits {len(waits)}, chunks recovered by the ledger "
        f"{len(cluster.events('chunk_recovered'))}"
    )
    assert 0 < pushed_before < pushed_after  # the push was under way when Redis died, and finished after
    assert len(keys) == len(set(keys)) == 2 * DOCUMENTS and letters == []
    assert sorted(alive) == ["a", "b"]  # the workers rode it out: no restart needed
    assert reconnects  # ... and reconnected by themselves
