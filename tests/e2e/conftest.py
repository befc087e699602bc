"""The harness of the end-to-end and failure tests: real worker processes, and servers the tests own.

- ``make_cluster``: worker processes (``nightclerk worker``) on one queue and store, started, killed with
  SIGKILL, stopped with SIGTERM and restarted; every start writes a log of its own, read back as events.
- ``private_redis``: a redis-server of the test's own (append-only file, password or TLS as asked), which
  the test may kill and start again on the same port and data.
- ``private_postgres``: a PostgreSQL cluster of the test's own (initdb, pg_ctl), which the test may stop
  and start again.

The workers run with fast-recovery settings (``FAST_RECOVERY``): a dead worker's chunk is handed out again
within seconds instead of the production default of 15 minutes.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
import redis

from nightclerk.cli.csv_head import csv_head
from nightclerk.cli.worker_process import WorkerProcess, nightclerk_env
from nightclerk.shared import broker
from nightclerk.shared.settings import Settings
from nightclerk.shared.store import DeadLetterStore, ResultStore

T = TypeVar("T")

REPO = Path(__file__).resolve().parents[2]
NESTOR = REPO / "var" / "data" / "nestor" / "excavators-cleaned.csv"
PG_BIN = next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)), Path("/nonexistent"))
FAST_RECOVERY = {
    "visibility_timeout_s": "10",  # a dead worker's chunk is handed out again after 10 s (+ one sweep)
    "restore_interval_s": "1",
    "lease_ttl_s": "5",
    "retry_backoff_max_s": "5",
    "outage_wait_s": "120",
}


def wait_for(condition: Callable[[], T], timeout: float, what: str, every: float = 0.3) -> T:
    """The condition's first truthy value (asking again could see the state move on)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def unavailable(what: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} is required under CI=true")
    pytest.skip(f"{what} is not available here")


def settings_of(env: dict[str, str]) -> Settings:
    return Settings(**{k: v for k, v in env.items() if k in Settings.model_fields})


def nightclerk(*args: str, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """The ``nightclerk`` command as a user runs it, with ``env``'s settings."""
    return subprocess.run(
        [sys.executable, "-m", "nightclerk.cli.main", *args],
        env=nightclerk_env(env, inherit=False),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(name="nightclerk")
def nightclerk_command() -> Callable[..., subprocess.CompletedProcess[str]]:
    return nightclerk


@pytest.fixture
def push(tmp_path: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """``push(path, env, *options, mapping="nestor", status=0)``: ``nightclerk push --no-progress`` of a file
    (``mapping=None``: the options name the columns), its rejects to a file of their own; fails the test
    unless it exits with ``status`` (or one of them)."""
    pushes = iter(range(1_000_000))

    def run(
        path: Path,
        env: dict[str, str],
        *options: str,
        mapping: str | None = "nestor",
        status: int | tuple[int, ...] = 0,
    ) -> subprocess.CompletedProcess[str]:
        number = next(pushes)
        mapped = ("--mapping", mapping) if mapping else ()
        rejects = tmp_path / f"push-{number}.rejects.jsonl"
        done = nightclerk("push", str(path), *mapped, "--no-progress", "--rejects", str(rejects), *options,
                          env=env)  # fmt: skip
        output = tmp_path / f"push-{number}.output"  # read it there: pushed text must not reach test output
        output.write_text(done.stdout + done.stderr)
        expected = status if isinstance(status, tuple) else (status,)
        assert done.returncode in expected, f"push exited {done.returncode}; its output is in {output}"
        return done

    return run


def _accepted_ids(path: Path, mapping: str, fmt: str | None = None) -> set[str]:
    from nightclerk.producers.mapping import load_preset
    from nightclerk.producers.readers import RecordReader, detect_format
    from nightclerk.producers.validation import Accepted, Validator

    validator = Validator(load_preset(mapping), max_text_bytes=500_000, max_json_bytes=1_000_000)
    with RecordReader(path, detect_format(path, fmt)) as reader:
        results = [validator.validate(str(path), line, record) for line, record in reader]
    return {result.document.id for result in results if isinstance(result, Accepted)}


@pytest.fixture
def accepted_ids() -> Callable[..., set[str]]:
    """``accepted_ids(path, mapping, fmt=None)``: the ids push accepts from a file -- the same reader and
    validator, in this process."""
    return _accepted_ids


@pytest.fixture(name="wait_for")
def wait_for_condition() -> Callable[..., Any]:
    return wait_for


@dataclass
class Cluster:
    """Worker processes sharing one queue and one store; ``env`` holds their ``NIGHTCLERK_*`` settings."""

    env: dict[str, str]
    logs: Path
    workers: dict[str, WorkerProcess] = field(default_factory=dict)
    starts: Counter[str] = field(default_factory=Counter)

    @property
    def settings(self) -> Settings:
        return settings_of(self.env)

    def start(self, name: str, *, wait: bool = True, **overrides: str) -> WorkerProcess:
        self.starts[name] += 1
        log_path = self.logs / f"{name}-{self.starts[name]}.log"
        worker = WorkerProcess({**self.env, **overrides}, log_path, ready_timeout=120, inherit=False).launch()
        self.workers[name] = worker
        return worker.wait_ready() if wait else worker

    def ready(self) -> list[str]:
        return [name for name, worker in self.workers.items() if worker.ready()]

    def holding_a_chunk(self) -> list[str]:
        """The workers holding a chunk's lease now (mid-chunk)."""
        client = broker.client(self.settings)
        holders = {
            (client.get(key) or b"").decode()
            for key in client.scan_iter(match=f"{self.settings.queue}:lease:*", count=1000)
        }
        client.close()
        return [
            name
            for name, worker in self.workers.items()
            if worker.process is not None
            and any(h.startswith(f"nightclerk-{worker.process.pid}@") for h in holders)
        ]

    def kill(self, name: str) -> None:
        """SIGKILL: what a machine that dies does to its worker."""
        self.workers.pop(name).kill()

    def stop(self, name: str, timeout: float = 120) -> int | None:
        """SIGTERM: a warm shutdown, as systemd or Kubernetes stops a worker."""
        return self.workers.pop(name).stop(timeout=timeout)

    def alive(self) -> list[str]:
        return [n for n, w in self.workers.items() if w.process is not None and w.process.poll() is None]

    def stop_all(self) -> None:
        for name in list(self.workers):
            self.stop(name, timeout=30)

    def log_text(self) -> str:
        return "\n".join(path.read_text(errors="replace") for path in sorted(self.logs.glob("*.log")))

    def events(self, event: str | None = None) -> list[dict[str, Any]]:
        found = []
        for line in self.log_text().splitlines():
            if line.startswith("{"):
                item = json.loads(line)
                if event is None or item.get("event") == event:
                    found.append(item)
        return found

    def inferred(self, event: str = "chunk_classified") -> int:
        """Documents inferred, over every worker and restart: more than the documents means double work."""
        return sum(int(e["inferred"]) for e in self.events(event))

    def drained(self) -> bool:
        settings = self.settings
        return broker.queue_depth(settings) == 0 and broker.unacked_count(settings) == 0

    def store(self) -> ResultStore:
        settings = self.settings
        store = ResultStore(settings.resolved_database_url, schema=settings.database_schema)
        store.create_schema()
        return store

    def dead_letters(self, store: ResultStore) -> DeadLetterStore:
        return DeadLetterStore(store)


@pytest.fixture
def cluster_env(
    tmp_path: Path, redis_url: str, queue_name: str, tiny_packs: Path, postgres_url: str, pg_schema: str
) -> dict[str, str]:
    """Workers on the test Redis database and queue, results in the test's PostgreSQL schema."""
    return {
        "redis_url": redis_url,
        "queue": queue_name,
        "packs_dir": str(tiny_packs),
        "data_dir": str(tmp_path),
        "database_url": postgres_url,
        "database_schema": pg_schema,
        "feed_stream": f"{queue_name}:results",
        "log_json": "true",
        **FAST_RECOVERY,
    }


@pytest.fixture
def make_cluster(tmp_path: Path) -> Iterator[Callable[[dict[str, str]], Cluster]]:
    made: list[Cluster] = []

    def make(env: dict[str, str]) -> Cluster:
        cluster = Cluster(env, tmp_path / f"logs-{len(made)}")
        cluster.logs.mkdir(parents=True, exist_ok=True)
        made.append(cluster)
        return cluster

    yield make
    for cluster in made:
        for worker in cluster.workers.values():
            if worker.process is not None and worker.process.poll() is None:
                worker.process.kill()
                worker.process.wait()


@pytest.fixture
def tickets(tmp_path: Path) -> Callable[[int], Path]:
    """The first ``n`` excavator work orders (nestor) as a CSV file."""
    if not NESTOR.is_file():
        unavailable(f"{NESTOR} (`make data` extracts it from the nist-nestor wheel)")

    def head(n: int) -> Path:
        return csv_head(NESTOR, tmp_path / f"tickets-{n}.csv", n)

    return head


class RedisServer:
    """A redis-server of the test's own, on a free port, its data in ``folder``."""

    def __init__(
        self, folder: Path, port: int, *, password: str | None = None, tls: dict[str, Path] | None = None
    ) -> None:
        self.folder = folder
        self.port = port
        self.password = password
        self.tls = tls
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        if self.tls:
            return (
                f"rediss://{auth}127.0.0.1:{self.port}/0?ssl_cert_reqs=required&ssl_ca_certs={self.tls['ca']}"
            )
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        args = ["redis-server", "--bind", "127.0.0.1", "--dir", str(self.folder), "--save", "",
                "--appendonly", "yes", "--appendfsync", "always",
                "--logfile", str(self.folder / "redis.log")]  # fmt: skip
        if self.tls:
            args += ["--port", "0", "--tls-port", str(self.port), "--tls-cert-file", str(self.tls["cert"]),
                     "--tls-key-file", str(self.tls["key"]), "--tls-ca-cert-file", str(self.tls["ca"]),
                     "--tls-auth-clients", "no"]  # fmt: skip
        else:
            args += ["--port", str(self.port)]
        if self.password:
            args += ["--requirepass", self.password]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(self._answers, 20, f"redis-server on port {self.port}", every=0.1)
        return self

    def _answers(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"redis-server exited: {(self.folder / 'redis.log').read_text()[-2000:]}")
        try:
            client = redis.Redis.from_url(self.url, socket_connect_timeout=1)
            client.ping()
            client.close()
            return True
        except redis.RedisError:
            return False

    def kill(self) -> None:
        """SIGKILL: the server dies; what it acknowledged is in its append-only file."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def private_redis(tmp_path: Path, free_port: Callable[[], int]) -> Iterator[Callable[..., RedisServer]]:
    if shutil.which("redis-server") is None:
        unavailable("redis-server")
    servers: list[RedisServer] = []

    def make(**options: Any) -> RedisServer:
        folder = tmp_path / f"redis-{len(servers)}"
        folder.mkdir()
        server = RedisServer(folder, free_port(), **options)
        servers.append(server)
        return server.start()

    yield make
    for server in servers:
        server.kill()


class PostgresCluster:
    """A PostgreSQL cluster of the test's own (initdb + pg_ctl), trust auth, on a free port."""

    def __init__(self, port: int) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="nightclerk-pg-"))  # /tmp: reachable by the postgres user
        self.port = port
        self.as_postgres = os.geteuid() == 0  # initdb refuses to run as root
        if self.as_postgres:
            shutil.chown(self.folder, "postgres", "postgres")
        self._run(str(PG_BIN / "initdb"), "-D", str(self.folder / "data"), "-U", "postgres", "--auth=trust",
                  "-E", "UTF8", "--no-sync")  # fmt: skip

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *command: str) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if self.as_postgres else []
        subprocess.run([*prefix, *command], check=True, capture_output=True, timeout=120)

    def start(self) -> PostgresCluster:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.folder / "data"), "-o", options, "-l",
                  str(self.folder / "server.log"), "-w", "-t", "60", "start")  # fmt: skip
        return self

    def stop(self, mode: str = "immediate") -> None:
        """``immediate``: the server goes away as in a crash or a failover, mid-transaction."""
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.folder / "data"), "-m", mode, "-w", "stop")

    def remove(self) -> None:
        if (self.folder / "data" / "postmaster.pid").exists():
            self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


@pytest.fixture
def private_postgres(free_port: Callable[[], int]) -> Iterator[PostgresCluster]:
    if not (PG_BIN / "initdb").is_file() or (os.geteuid() == 0 and shutil.which("runuser") is None):
        unavailable("PostgreSQL server binaries (initdb, pg_ctl)")
    cluster = PostgresCluster(free_port()).start()
    yield cluster
    cluster.remove()


@pytest.fixture(scope="session")
def summarizing_packs(tiny_packs: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny classify packs and a tiny extractive ``summarizer``: both tasks for every kind."""
    from nightclerk.exporters.tiny import build_tiny_extractive

    root = tmp_path_factory.mktemp("summarizing-packs")
    for pack in tiny_packs.iterdir():
        shutil.copytree(pack, root / pack.name)
    build_tiny_extractive(root, "summarizer")
    return root
