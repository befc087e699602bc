"""Fixtures for the producer tests: a real Redis database (db 11) and a queue of each test's own.

Without Redis the tests that need it skip with a reason; under CI=true they fail. Each test's queue and
kombu's bookkeeping keys for it are deleted afterwards.
"""

from __future__ import annotations

import csv
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import redis
import uvicorn

from nightclerk.producers.webhook import create_app
from nightclerk.shared.messages import PROCESS_CHUNK_TASK, ChunkMessage
from nightclerk.shared.settings import Settings

PRODUCER_REDIS_DB = int(os.environ.get("NIGHTCLERK_TEST_PRODUCER_REDIS_DB", "11"))
PRODUCER_REDIS_URL = f"redis://127.0.0.1:6379/{PRODUCER_REDIS_DB}"
MTSAMPLES_NOTES = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "mtsamples" / "notes.csv"
NESTOR_COLUMNS = [
    "BscStartDate",
    "Asset",
    "OriginalShorttext",
    "PMType",
    "Cost",
    "RunningTime",
    "MajorSystem",
    "Part",
    "Action",
    "Variant",
    "FM",
    "Location",
    "Comments",
    "FuncLocation",
    "SuspSugg",
    "Rule",
]
SECRET = "PHI-SECRET-7f3a"  # put in every test text: it must never show up in a reason, a log or output

QueueReader = Callable[[], list[ChunkMessage]]
CsvWriter = Callable[..., Path]


def _unavailable(why: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"Redis is required under CI=true: {why}")
    pytest.skip(f"Redis not available at {PRODUCER_REDIS_URL}: {why}")


@pytest.fixture
def producer_redis() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(PRODUCER_REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        client.close()
        _unavailable(type(exc).__name__)
    yield client
    client.close()


@pytest.fixture
def producer_settings(producer_redis: redis.Redis) -> Iterator[Settings]:
    """Settings aimed at db 11 and a fresh queue; the queue and kombu's keys for it go afterwards."""
    queue = f"nc-producers-test-{uuid.uuid4().hex[:12]}"
    yield Settings(redis_url=PRODUCER_REDIS_URL, queue=queue)
    keys = list(producer_redis.scan_iter(match=f"*{queue}*"))
    if keys:
        producer_redis.delete(*keys)


RawReader = Callable[[], list[tuple[dict[str, Any], list[Any]]]]
MessageDecoder = Callable[[bytes | str], tuple[dict[str, Any], list[Any]]]


@pytest.fixture
def queued_raw(
    producer_redis: redis.Redis, producer_settings: Settings, decode_message: MessageDecoder
) -> RawReader:
    """Every message on the test's queue, oldest first, as (kombu envelope, decoded Celery body)."""

    def read() -> list[tuple[dict[str, Any], list[Any]]]:
        raws = producer_redis.lrange(producer_settings.queue, 0, -1)
        return [decode_message(raw) for raw in reversed(raws)]  # LPUSH: newest first

    return read


@pytest.fixture
def queued(queued_raw: RawReader) -> QueueReader:
    """The chunks on the test's queue, each checked to be a JSON Celery message for the chunk task."""

    def read() -> list[ChunkMessage]:
        chunks = []
        for envelope, (args, kwargs, _) in queued_raw():
            assert envelope["headers"]["task"] == PROCESS_CHUNK_TASK
            assert kwargs == {}
            assert len(args) == 1
            chunks.append(ChunkMessage.model_validate(args[0]))
        return chunks

    return read


@pytest.fixture
def write_csv(tmp_path: Path) -> CsvWriter:
    """Write rows (dicts or lists) under a header to a CSV file in the test's folder."""

    def write(name: str, header: Sequence[str], rows: Sequence[Any]) -> Path:
        path = tmp_path / name
        with path.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(header)
            for row in rows:
                writer.writerow([row.get(col, "") for col in header] if isinstance(row, dict) else row)
        return path

    return write


def nestor_row(date: str, asset: str, text: str) -> dict[str, str]:
    row = dict.fromkeys(NESTOR_COLUMNS, "NA")
    row.update(
        BscStartDate=date,
        Asset=asset,
        OriginalShorttext=text,
        PMType="PM01",
        Cost="10.5",
        MajorSystem="Bucket",
    )
    return row


@pytest.fixture
def nestor_columns() -> list[str]:
    return list(NESTOR_COLUMNS)


@pytest.fixture
def make_nestor_row() -> Callable[[str, str, str], dict[str, str]]:
    return nestor_row


@pytest.fixture
def secret() -> str:
    return SECRET


@pytest.fixture
def nestor_csv(write_csv: CsvWriter) -> Path:
    """Work orders shaped like nestor's excavators-cleaned.csv, identical texts and rows included."""
    rows = [
        nestor_row("2004-07-01", "A", "BUCKET WON'T OPEN"),
        nestor_row("2004-07-01", "A", "BUCKET WON'T OPEN"),  # an identical row: a second work order
        nestor_row("2004-07-01", "B", "BUCKET WON'T OPEN"),
        nestor_row("2005-03-20", "A", "L/H BUCKET CYL LEAKING."),
        nestor_row("2006-05-05", "C", "SWAP BUCKET"),
        nestor_row("2006-05-05", "C", 'replace, "quoted"\nsecond line'),
    ]
    return write_csv("excavators-cleaned.csv", NESTOR_COLUMNS, rows)


@pytest.fixture
def mtsamples_300(tmp_path: Path) -> Path:
    """The first 300 records of MTSamples' notes.csv (records span lines, so via the csv module)."""
    if not MTSAMPLES_NOTES.is_file():
        pytest.skip(f"{MTSAMPLES_NOTES} is not here (it comes with the project's shared folder)")
    path = tmp_path / "notes-300.csv"
    with (
        MTSAMPLES_NOTES.open(encoding="utf-8", newline="") as source,
        path.open("w", encoding="utf-8", newline="") as target,
    ):
        reader = csv.reader(source)
        writer = csv.writer(target)
        writer.writerow(next(reader))
        for _, row in zip(range(300), reader, strict=False):
            writer.writerow(row)
    return path


@pytest.fixture
def serve_intake(free_port: Callable[[], int]) -> Iterator[Callable[[Settings], str]]:
    """``serve_intake(settings)``: the webhook app on uvicorn in a thread; its base URL. Stopped after."""
    servers: list[tuple[uvicorn.Server, threading.Thread]] = []

    def serve(settings: Settings) -> str:
        port = free_port()
        config = uvicorn.Config(
            create_app(settings), host="127.0.0.1", port=port, log_level="error", access_log=False
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        servers.append((server, thread))
        deadline = time.monotonic() + 10
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.started, "uvicorn did not start"
        return f"http://127.0.0.1:{port}"

    yield serve
    for server, thread in servers:
        server.should_exit = True
        thread.join(timeout=10)
