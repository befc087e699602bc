"""End to end on real services: push CSV files -> Redis -> a real worker process -> SQLite / PostgreSQL.

Tiny random-init packs stand in for the real ones (the demo and the benchmark run the real packs).
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from nightclerk.cli.csv_head import csv_head
from nightclerk.shared.celery_app import make_celery
from nightclerk.shared.change_feed import ChangeFeed, FeedConsumer
from nightclerk.shared.messages import PROCESS_CHUNK_TASK

pytestmark = pytest.mark.slow

NOTES = 240
TICKETS = 260


@pytest.fixture(params=["sqlite", "postgresql"])
def worker_env(
    request: pytest.FixtureRequest, cluster_env: dict[str, str], free_port: Callable[[], int]
) -> dict[str, str]:
    env = {**cluster_env, "metrics_port": str(free_port())}
    if request.param == "sqlite":  # the default store: a file under data_dir
        del env["database_url"], env["database_schema"]
    return env


def _scraped(env: dict[str, str], outcome: str) -> float:
    """``nightclerk_documents_total`` of an outcome, summed, as Prometheus would scrape the worker."""
    text = httpx.get(f"http://127.0.0.1:{env['metrics_port']}/metrics", timeout=5).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "nightclerk_documents_total" and sample.labels["outcome"] == outcome
    )


def test_every_accepted_document_gets_exactly_one_result(
    worker_env: dict[str, str],
    make_cluster: Callable[[dict[str, str]], Any],
    mtsamples_csv: Path,
    tickets: Callable[[int], Path],
    tmp_path: Path,
    push: Callable[..., Any],
    nightclerk: Callable[..., Any],
    wait_for: Callable[..., Any],
) -> None:
    notes = csv_head(mtsamples_csv, tmp_path / "notes.csv", NOTES)
    inputs = ((notes, "mtsamples"), (tickets(TICKETS), "nestor"))
    cluster = make_cluster(worker_env)
    store = cluster.store()

    # A pickled message first: the worker must refuse it, keep its body out of the log, and go on.
    with notes.open(newline="", encoding="utf-8") as handle:
        texts = [row["transcription"] for row in csv.DictReader(handle)]
    pickled = {"tasks": ["classify"], "documents": [{"kind": "ehr_note", "source": "x", "text": texts[0]}]}
    app = make_celery(cluster.settings)
    app.send_task(PROCESS_CHUNK_TASK, args=[pickled], serializer="pickle", queue=cluster.settings.queue)
    app.close()

    expected = NOTES + TICKETS
    try:
        cluster.start("a")
        for path, mapping in inputs:
            push(path, worker_env, "--tasks", "classify", mapping=mapping)
        wait_for(lambda: store.count() >= expected, 180, f"{expected} results")
        wait_for(cluster.drained, 60, "the queue to drain")

        rows = list(store.rows())
        keys = [(r.document_id, r.task, r.pack_version) for r in rows]
        assert len(keys) == len(set(keys)) == expected
        assert sum(r.kind == "ehr_note" for r in rows) == NOTES
        assert sum(r.kind == "repair_ticket" for r in rows) == TICKETS
        assert all(r.labels and 0.0 <= r.labels[0].score <= 1.0 for r in rows)
        # auto on a CPU: per pack, the variant measured fastest at load, the same for all its rows
        chosen = {(r.pack_name, r.precision) for r in rows}
        assert len(chosen) == len({r.pack_name for r in rows}) and {p for _, p in chosen} <= {"int8", "fp32"}
        # every stored result was announced on the change feed, with the row's own key
        feed = ChangeFeed.from_settings(cluster.settings)
        announced = {
            (e.announcement.document_id, e.announcement.task, e.announcement.pack_version)
            for e in FeedConsumer(feed, "e2e", "c1").read(count=10 * expected)
        }
        feed.close()
        assert announced == set(keys)

        # The same files again: no second result.
        for path, mapping in inputs:
            push(path, worker_env, mapping=mapping)
        time.sleep(1.0)
        wait_for(cluster.drained, 60, "the re-pushed chunks to drain")
        assert store.count() == expected
        # the worker's /metrics, scraped as Prometheus would: every document stored once, then skipped once
        assert (_scraped(worker_env, "stored"), _scraped(worker_env, "skipped")) == (expected, expected)
        status = nightclerk("status", "--wait-s", "2", env=worker_env)
        assert status.returncode == 0 and "1 answered" in status.stdout, status.stdout + status.stderr[-1000:]
        assert f"{expected} results" in status.stdout  # stored in the last 5 minutes
    finally:
        cluster.stop_all()
        store.drop()
        store.close()

    log = cluster.log_text()
    refused = "pickle" in log
    assert refused  # refused, and the worker went on to process everything else
    assert cluster.inferred() == expected  # inference ran once per document
    assert sum(e["skipped"] for e in cluster.events("chunk_classified")) == expected  # the re-push recognised
    # No note text in the worker's log (distinctive stretches of the pushed notes, the pickled one first);
    # only their numbers are shown on failure, never the text.
    probes = [" ".join(text.split()[5:12]) for text in texts]
    leaked = [i for i, probe in enumerate(probes) if len(probe) >= 20 and probe in log]
    assert leaked == [], f"text of notes {leaked} in the worker log"
