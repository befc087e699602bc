"""Workers die mid-run -- SIGKILL at random moments, restarted each time -- and SIGTERM mid-chunk.

5,000 work orders are pushed for classify and summarize, two worker processes consume them, and one of them
is killed with SIGKILL five times while chunks are in flight, each time restarted -- the kills spread over
the first 60% of the results, at random moments within each share, so a fast machine cannot finish the run
before they land. When the queue has
drained, every accepted document has exactly one row per task: none lost, none twice, no dead letters.
A warm shutdown (SIGTERM) finishes the chunk in hand and hands back what it had not started, so nothing is
inferred twice.
"""

from __future__ import annotations

import json
import os
import random
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from nightclerk.shared import broker

pytestmark = pytest.mark.slow

DOCUMENTS = 5_000
KILLS = 5
KILL_SPAN = 0.6  # the share of the results by which the last kill has happened
TASKS = ("classify", "summarize")


def _queued_chunk_ids(settings: Any) -> list[str]:
    raws = broker.client(settings).lrange(settings.queue, 0, -1)
    return [json.loads(raw)["headers"]["id"] for raw in raws]


def test_sigkill_five_times_mid_run_loses_and_duplicates_nothing(
    cluster_env: dict[str, str],
    make_cluster: Callable[[dict[str, str]], Any],
    tickets: Callable[[int], Path],
    summarizing_packs: Path,
    push: Callable[..., Any],
    accepted_ids: Callable[..., set[str]],
    wait_for: Callable[..., Any],
) -> None:
    seed = int(os.environ.get("NIGHTCLERK_CHAOS_SEED", str(random.randrange(1 << 30))))
    rng = random.Random(seed)
    csv = tickets(DOCUMENTS)
    expected = accepted_ids(csv, "nestor")
    assert len(expected) == DOCUMENTS
    cluster = make_cluster({**cluster_env, "packs_dir": str(summarizing_packs), "chunk_docs": "100"})
    store = cluster.store()
    push(csv, cluster.env, "--tasks", ",".join(TASKS))
    settings = cluster.settings
    pushed = _queued_chunk_ids(settings)
    for name in ("a", "b"):
        cluster.start(name)
    kills: list[dict[str, Any]] = []
    total = len(TASKS) * DOCUMENTS
    try:
        while len(kills) < KILLS:
            # Each kill waits for its share of the results, not for a time: on a fast machine a run of
            # timed kills ends before the last one lands; the marks spread them over the first 60% of it.
            mark = round(total * KILL_SPAN * (len(kills) + 1) / KILLS)
            wait_for(
                lambda mark=mark: store.count() >= mark, 240, f"{mark} results before kill {len(kills) + 1}"
            )
            time.sleep(rng.uniform(0.0, 0.3))
            mid_chunk = rng.random() < 0.6  # else whichever worker: idle, fetching, or mid-chunk
            candidates = cluster.holding_a_chunk if mid_chunk else cluster.ready
            victim = rng.choice(wait_for(candidates, 60, "a victim"))
            kills.append({"worker": victim, "mid_chunk": mid_chunk, "waiting": broker.queue_depth(settings)})
            cluster.kill(victim)
            cluster.start(victim, wait=False)  # restarted at once, as a supervisor would
        try:
            wait_for(lambda: store.count() >= len(TASKS) * DOCUMENTS, 240, "every result", every=1)
        except AssertionError:
            stored_chunks = {r.chunk_id for r in store.rows()}
            never = sorted(set(pushed) - stored_chunks)
            client = broker.client(settings)
            seen = [(c, [p.name for p in cluster.logs.glob("*.log") if c in p.read_text()]) for c in never]
            keys = sorted(k.decode() for k in client.keys("*"))
            raise AssertionError(
                f"kills {kills}; chunks never stored: {never}; in logs: {seen}; redis keys: {keys}"
            ) from None
        wait_for(cluster.drained, 120, "the queue to drain")
        rows = list(store.rows())
        letters = cluster.dead_letters(store).letters()
    finally:
        cluster.stop_all()
        store.close()

    keys = [(r.document_id, r.task) for r in rows]
    lost = len(TASKS) * len(expected) - len(set(keys))
    duplicated = len(keys) - len(set(keys))
    received = Counter(
        e["event"].split("[")[1].split("]")[0] for e in cluster.events() if e["event"].endswith("] received")
    )
    redelivered = sum(1 for n in received.values() if n > 1)
    skipped = sum(int(e["skipped"]) for e in cluster.events("chunk_classified"))
    recovered = len(cluster.events("chunk_recovered"))
    print(
        f"\nworker death (seed {seed}): {DOCUMENTS} documents x {len(TASKS)} tasks pushed; {len(kills)} "
        f"SIGKILLs ({sum(k['mid_chunk'] for k in kills)} of a worker holding a chunk) with "
        f"{[k['waiting'] for k in kills]} chunks waiting; {len(rows)} rows: lost {lost}, "
        f"duplicated {duplicated}; "
        f"dead letters {len(letters)}; chunks delivered again {redelivered} ({skipped} of their documents "
        f"found stored and skipped); chunks recovered by the ledger {recovered}"
    )
    assert len(kills) == KILLS and all(k["waiting"] > 0 for k in kills)  # every kill landed mid-run
    assert set(keys) == {(doc_id, task) for doc_id in expected for task in TASKS}
    assert (lost, duplicated, letters) == (0, 0, [])
    assert sum(cluster.starts.values()) == 2 + KILLS  # each killed worker was started again


def test_sigterm_finishes_the_chunk_in_hand_and_hands_back_the_rest(
    cluster_env: dict[str, str],
    make_cluster: Callable[[dict[str, str]], Any],
    tickets: Callable[[int], Path],
    summarizing_packs: Path,
    push: Callable[..., Any],
    wait_for: Callable[..., Any],
) -> None:
    documents = 1_500
    csv = tickets(documents)
    cluster = make_cluster({**cluster_env, "packs_dir": str(summarizing_packs), "chunk_docs": "20"})
    store = cluster.store()
    push(csv, cluster.env, "--tasks", ",".join(TASKS))
    settings = cluster.settings
    try:
        cluster.start("a")
        wait_for(lambda: store.count() > 0, 120, "the first results")
        wait_for(lambda: broker.unacked_count(settings) > 0, 60, "a chunk in flight")
        started = time.monotonic()
        code = cluster.stop("a")  # SIGTERM
        shutdown_s = time.monotonic() - started
        assert code == 0
        assert broker.unacked_count(settings) == 0  # nothing left unacknowledged: finished or handed back
        stored_at_stop = store.count()
        assert 0 < stored_at_stop < len(TASKS) * documents and broker.queue_depth(settings) > 0
        cluster.start("b")
        wait_for(lambda: store.count() >= len(TASKS) * documents, 300, "every result", every=1)
        wait_for(cluster.drained, 60, "the queue to drain")
        keys = [(r.document_id, r.task) for r in store.rows()]
    finally:
        cluster.stop_all()
        store.close()
    print(
        f"\nwarm shutdown: {shutdown_s:.1f} s, {stored_at_stop} rows stored by then, {len(keys)} in the end"
    )
    assert len(keys) == len(set(keys)) == len(TASKS) * documents
    # a warm shutdown redoes nothing: every document was inferred exactly once for each task
    assert cluster.inferred("chunk_classified") == documents
    assert cluster.inferred("chunk_summarized") == documents


def test_a_chunk_the_broker_lost_is_sent_again_from_the_ledger(
    cluster_env: dict[str, str],
    make_cluster: Callable[[dict[str, str]], Any],
    tickets: Callable[[int], Path],
    push: Callable[..., Any],
    wait_for: Callable[..., Any],
) -> None:
    documents = 200
    cluster = make_cluster({**cluster_env, "chunk_docs": "20", "chunk_max_docs": "20"})
    store = cluster.store()
    push(tickets(documents), cluster.env)
    # What a worker killed right after BRPOP leaves behind: the message is off the queue and in no
    # unacknowledged set -- kombu records it only after the pop.
    client = broker.client(cluster.settings)
    lost = json.loads(client.rpop(cluster.settings.queue))["headers"]["id"]
    try:
        cluster.start("a")
        wait_for(lambda: store.count() >= documents, 120, "every result, the lost chunk's too", every=1)
        wait_for(cluster.drained, 60, "the queue to drain")
        rows = list(store.rows())
    finally:
        cluster.stop_all()
        store.close()
    assert len(rows) == len({r.document_id for r in rows}) == documents
    assert [e["chunk_id"] for e in cluster.events("chunk_recovered")] == [lost]
    assert {r.chunk_id for r in rows if r.chunk_id == lost} == {lost}
