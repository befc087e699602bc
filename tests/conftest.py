"""Fixtures for the real services: Redis on 127.0.0.1:6379 and PostgreSQL on 127.0.0.1:5432.

Each test gets its own Redis database and queue name, and its own PostgreSQL schema; all are removed
afterwards. Without the services the tests skip with a reason, except under CI=true, where they fail.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

REDIS_HOST = os.environ.get("NIGHTCLERK_TEST_REDIS_HOST", "127.0.0.1")
REDIS_DB = int(os.environ.get("NIGHTCLERK_TEST_REDIS_DB", "13"))
POSTGRES_URL = os.environ.get(
    "NIGHTCLERK_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REPO = Path(__file__).resolve().parents[1]
MTSAMPLES = REPO.parent / "shared" / "data" / "mtsamples" / "notes.csv"


FUZZ_TESTS = "tests/producers/fuzz/"


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Under pytest-xdist (``make test`` runs ``-n N``) every test but the fuzz tests stays in one process,
    in collection order, as without xdist: they share kombu's keys in the Redis test database, real workers
    on the same cores and free ports, and were written to run one at a time. The six fuzz tests (each on a
    queue of its own in db 11, CPU-bound in hypothesis and the push) go to the other processes.

    A scheduler rather than ``xdist_group`` marks: xdist 3.8 puts the group into ``item._nodeid``, which
    pytest 9.2 no longer reads, so ``--dist loadgroup`` groups nothing.
    """
    if config.getvalue("dist") != "load":  # -n alone means load; an explicit --dist is the caller's choice
        return None
    from xdist.scheduler import LoadScopeScheduling

    class FuzzBesideTheRest(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return nodeid if nodeid.startswith(FUZZ_TESTS) else "everything but the fuzz tests"

    return FuzzBesideTheRest(config, log)


def _unavailable(what: str, why: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} is required under CI=true: {why}")
    pytest.skip(f"{what} not available: {why}")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def free_port() -> Callable[[], int]:
    """``free_port()``: a port on 127.0.0.1 that nothing listens on now."""
    return _free_port


@pytest.fixture
def redis_url() -> Iterator[str]:
    url = f"redis://{REDIS_HOST}:6379/{REDIS_DB}"
    client = redis.Redis.from_url(url, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        _unavailable("Redis", type(exc).__name__)
    yield url
    client.close()


@pytest.fixture
def queue_name(redis_url: str) -> Iterator[str]:
    name = f"nightclerk-test-{uuid.uuid4().hex[:10]}"
    yield name
    client = redis.Redis.from_url(redis_url)
    client.delete(name, f"{name}.rejected")  # the queue and its rejects
    for key in client.scan_iter(match=f"{name}:*"):  # its change feed, chunk ledger and leases
        client.delete(key)
    # kombu bookkeeping for this db: only test queues live in it
    client.delete("unacked", "unacked_index", "unacked_mutex")
    for key in client.scan_iter(match="_kombu.binding*"):
        client.delete(key)
    client.close()


@pytest.fixture
def change_feed(redis_url: str) -> Iterator[Any]:
    """A change feed on its own stream in the test Redis database, deleted afterwards."""
    from nightclerk.shared.change_feed import ChangeFeed

    feed = ChangeFeed.from_url(redis_url, f"nightclerk-test-feed-{uuid.uuid4().hex[:10]}")
    yield feed
    feed.client.delete(feed.stream)
    feed.close()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    import sqlalchemy as sa

    engine = sa.create_engine(POSTGRES_URL)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("select 1"))
    except Exception as exc:
        _unavailable("PostgreSQL", type(exc).__name__)
    finally:
        engine.dispose()
    yield POSTGRES_URL


@pytest.fixture
def pg_schema(postgres_url: str) -> Iterator[str]:
    import sqlalchemy as sa

    schema = f"nc_test_{uuid.uuid4().hex[:10]}"
    yield schema
    engine = sa.create_engine(postgres_url)
    with engine.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    engine.dispose()


@pytest.fixture
def pg_result_store(postgres_url: str, pg_schema: str) -> Iterator[Any]:
    """A :class:`ResultStore` on the test's own PostgreSQL schema, its table created."""
    from nightclerk.shared.store import ResultStore

    store = ResultStore(postgres_url, schema=pg_schema)
    store.create_schema()
    yield store
    store.close()


def _decode_message(raw: bytes | str) -> tuple[dict[str, Any], list[Any]]:
    envelope = json.loads(raw)
    assert envelope["content-type"] == "application/json"
    body = envelope["body"]
    if envelope["properties"].get("body_encoding") == "base64":
        body = base64.b64decode(body)
    return envelope, json.loads(body)


@pytest.fixture
def decode_message() -> Callable[[bytes | str], tuple[dict[str, Any], list[Any]]]:
    """A kombu-on-Redis message -> (envelope, Celery protocol-2 body ``[args, kwargs, embed]``)."""
    return _decode_message


@pytest.fixture
def mtsamples_csv() -> Path:
    if not MTSAMPLES.is_file():
        pytest.skip(f"{MTSAMPLES} is not here (it comes with the project's shared folder)")
    return MTSAMPLES


TINY_PACKS = {
    "ehr-specialty": (["Surgery", "Radiology", "other"], 64),
    "ticket-system": (["Bucket", "Engine", "Hydraulic", "other"], 32),
    "lit-pubtype": (["review", "trial", "research"], 64),
}


@pytest.fixture(scope="session")
def tiny_packs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A packs folder with random-init tiny stand-ins for the demo packs (copy one before changing it)."""
    from nightclerk.exporters.tiny import build_tiny_pack

    root = tmp_path_factory.mktemp("tiny-packs")
    for name, (labels, max_tokens) in TINY_PACKS.items():
        build_tiny_pack(root, name, labels, max_tokens=max_tokens)
    return root


@pytest.fixture(scope="session")
def fragile_packs(tiny_packs: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny packs, but ``ehr-specialty`` fails in ONNX Runtime on any note holding ``POISON_WORD``."""
    import shutil

    from nightclerk.exporters.tiny import POISON_VOCAB, build_tiny_pack

    root = tmp_path_factory.mktemp("fragile-packs")
    for name in TINY_PACKS:
        if name != "ehr-specialty":
            shutil.copytree(tiny_packs / name, root / name)
    labels, max_tokens = TINY_PACKS["ehr-specialty"]
    build_tiny_pack(root, "ehr-specialty", labels, max_tokens=max_tokens, vocab_size=POISON_VOCAB)
    return root


def _flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.fixture
def flip_a_byte() -> Callable[[Path], None]:
    """Tamper with a file the way a bad disk or a bad actor would: one byte in the middle changed."""
    return _flip_a_byte
