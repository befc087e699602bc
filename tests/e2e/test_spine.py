"""End to end on real services: push CSV files -> Redis -> a real worker process -> SQLite / PostgreSQL.

Tiny random-init packs stand in for the real ones (the demo and the benchmark run the real packs).
"""

from __future__ import annotations

import csv
import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from nightclerk.cli.csv_head import csv_head
from nightclerk.cli.worker_process import WorkerProcess, nightclerk_env
from nightclerk.shared import broker
from nightclerk.shared.celery_app import make_celery
from nightclerk.shared.change_feed import ChangeFeed, FeedConsumer
from nightclerk.shared.messages import PROCESS_CHUNK_TASK
from nightclerk.shared.settings import Settings
from nightclerk.shared.store import ResultStore

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
NESTOR = REPO / "var" / "data" / "nestor" / "excavators-cleaned.csv"
NOTES = 240
TICKETS = 260


@pytest.fixture
def inputs(tmp_path: Path, mtsamples_csv: Path) -> tuple[Path, Path]:
    if not NESTOR.is_file():
        pytest.skip(f"{NESTOR} is missing: `make data` extracts it from the nist-nestor wheel")
    notes = csv_head(mtsamples_csv, tmp_path / "notes.csv", NOTES)
    return notes, csv_head(NESTOR, tmp_path / "tickets.csv", TICKETS)


def _nightclerk(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nightclerk.cli.main", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture
def worker_env(
    request: pytest.FixtureRequest, tmp_path: Path, redis_url: str, queue_name: str, tiny_packs: Path
) -> Iterator[dict[str, str]]:
    backend = request.param
    env = {
        "redis_url": redis_url,
        "queue": queue_name,
        "packs_dir": str(tiny_packs),
        "data_dir": str(tmp_path),
        "log_json": "true",
        "feed_stream": f"{queue_name}:results",  # removed with the queue (conftest)
        "metrics_port": str(_free_port()),
    }
    if backend == "postgresql":
        env["database_url"] = request.getfixturevalue("postgres_url")
        env["database_schema"] = request.getfixturevalue("pg_schema")
    yield env


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _scraped(env: dict[str, str], outcome: str) -> float:
    """``nightclerk_documents_total`` of an outcome, summed, as Prometheus would scrape the worker."""
    text = httpx.get(f"http://127.0.0.1:{env['metrics_port']}/metrics", timeout=5).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "nightclerk_documents_total" and sample.labels["outcome"] == outcome
    )


def _settings(env: dict[str, str]) -> Settings:
    return Settings(**{k: v for k, v in env.items() if k in Settings.model_fields})


def _store(env: dict[str, str]) -> ResultStore:
    settings = _settings(env)
    store = ResultStore(settings.resolved_database_url, schema=settings.database_schema)
    store.create_schema()
    return store


def _wait_for(condition: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def _drained(env: dict[str, str]) -> bool:
    return broker.queue_depth(_settings(env)) == 0 and broker.unacked_count(_settings(env)) == 0


@pytest.mark.parametrize("worker_env", ["sqlite", "postgresql"], indirect=True)
def test_every_accepted_document_gets_exactly_one_result(
    worker_env: dict[str, str], inputs: tuple[Path, Path], tmp_path: Path
) -> None:
    notes, tickets = inputs
    env = nightclerk_env(worker_env)
    log_path = tmp_path / "worker.log"
    store = _store(worker_env)

    # A pickled message first: the worker must refuse it, keep its body out of the log, and go on.
    with notes.open(newline="", encoding="utf-8") as handle:
        texts = [row["transcription"] for row in csv.DictReader(handle)]
    pickled = {"tasks": ["classify"], "documents": [{"kind": "ehr_note", "source": "x", "text": texts[0]}]}
    settings = Settings(redis_url=worker_env["redis_url"], queue=worker_env["queue"])
    make_celery(settings).send_task(
        PROCESS_CHUNK_TASK, args=[pickled], serializer="pickle", queue=settings.queue
    )

    worker = WorkerProcess(worker_env, log_path).start()
    try:
        first_notes = _nightclerk(
            "push",
            str(notes),
            "--mapping",
            "mtsamples",
            "--tasks",
            "classify",
            "--rejects",
            str(tmp_path / "r1.jsonl"),
            "--no-progress",
            env=env,
        )
        first_tickets = _nightclerk(
            "push",
            str(tickets),
            "--mapping",
            "nestor",
            "--tasks",
            "classify",
            "--rejects",
            str(tmp_path / "r2.jsonl"),
            "--no-progress",
            env=env,
        )
        assert first_notes.returncode == 0, first_notes.stderr[-2000:]
        assert first_tickets.returncode == 0, first_tickets.stderr[-2000:]
        expected = NOTES + TICKETS
        _wait_for(lambda: store.count() >= expected, 180, f"{expected} results")
        _wait_for(lambda: _drained(worker_env), 60, "the queue to drain")

        rows = list(store.rows())
        keys = [(r.document_id, r.task, r.pack_version) for r in rows]
        assert len(keys) == len(set(keys)) == expected
        assert sum(r.kind == "ehr_note" for r in rows) == NOTES
        assert sum(r.kind == "repair_ticket" for r in rows) == TICKETS
        assert all(r.labels and 0.0 <= r.labels[0].score <= 1.0 for r in rows)
        assert {r.precision for r in rows} == {"int8"}  # the CPU default
        # every stored result was announced on the change feed, with the row's own key
        feed = ChangeFeed.from_url(worker_env["redis_url"], worker_env["feed_stream"])
        announced = {
            (e.announcement.document_id, e.announcement.task, e.announcement.pack_version)
            for e in FeedConsumer(feed, "e2e", "c1").read(count=10 * expected)
        }
        feed.close()
        assert announced == set(keys)

        # The same files again: no second result.
        for path, mapping in ((notes, "mtsamples"), (tickets, "nestor")):
            again = _nightclerk(
                "push",
                str(path),
                "--mapping",
                mapping,
                "--no-progress",
                "--rejects",
                str(tmp_path / f"again-{mapping}.jsonl"),
                env=env,
            )
            assert again.returncode == 0, again.stderr[-2000:]
        time.sleep(1.0)
        _wait_for(lambda: _drained(worker_env), 60, "the re-pushed chunks to drain")
        assert store.count() == expected
        # the worker's /metrics, scraped as Prometheus would: every document stored once, then skipped once
        assert (_scraped(worker_env, "stored"), _scraped(worker_env, "skipped")) == (expected, expected)
        status = _nightclerk("status", "--wait-s", "2", env=env)
        assert status.returncode == 0 and "1 answered" in status.stdout, status.stdout + status.stderr[-1000:]
        assert f"{expected} results" in status.stdout  # stored in the last 5 minutes
    finally:
        worker.stop()
        store.drop()
        store.close()

    log = log_path.read_text()
    assert "pickle" in log  # refused, and the worker went on to process everything else
    events = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    classified = [e for e in events if e.get("event") == "chunk_classified"]
    assert sum(e["inferred"] for e in classified) == NOTES + TICKETS  # inference ran once per document
    assert sum(e["skipped"] for e in classified) == NOTES + TICKETS  # the re-push was recognised
    # No note text in the worker's log (distinctive stretches of the pushed notes, the pickled one first).
    for text in texts:
        words = text.split()
        probe = " ".join(words[5:12])
        assert len(probe) < 20 or probe not in log
