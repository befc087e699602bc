"""(2) nightclerk end to end: push -> Redis -> ``nightclerk worker`` processes -> the result store.

:class:`Nightclerk` starts the workers (packs loaded and verified before any clock starts) against a queue,
change feed and PostgreSQL schema of the benchmark's own, and :meth:`Nightclerk.run` times one push of a
corpus -- under a new source name each time, so every repetition is new work -- from the first document
pushed to the last result stored. With several workers each gets ``cores / workers`` ONNX Runtime threads:
more would make them fight over the cores.

:func:`run_end_to_end` starts one set of workers per corpus, serving that corpus's pack alone (``serving``):
as a queue per document kind would run them, and as Ray's actors hold the one pack their job needs. A worker
that serves every kind holds every pack, which its memory shows, not its speed.

Measuring must not take the cores it measures: the end is read off the change feed (:mod:`bench.feed_clock`,
one blocking read, Redis's own timestamps) and memory is sampled once a second (:mod:`bench.sampler`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import redis

from bench.corpora import Corpus, repeat_mapping
from bench.feed_clock import FeedClock
from bench.sampler import PeakSampler
from bench.stats import Spread
from nightclerk.cli.csv_head import csv_head
from nightclerk.cli.worker_process import WorkerProcess
from nightclerk.producers.push import push_files
from nightclerk.shared.settings import Settings
from nightclerk.shared.store import ResultStore

QUEUE = "nightclerk-bench"


@dataclass
class Timed:
    docs: int
    seconds: float
    push_seconds: float
    peak_workers_mib: float
    peak_redis_mib: float
    progress: list[tuple[float, int]] = field(default_factory=list)  # (seconds, stored) while it ran

    @property
    def docs_per_s(self) -> float:
        return self.docs / self.seconds


def clear_queue_keys(redis_url: str, queue: str = QUEUE) -> None:
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"{queue}*", count=1000))
    if keys:
        client.delete(*keys)


def serving(settings: Settings, pack: str) -> dict[str, dict[str, str]]:
    """The worker settings that load ``pack`` alone: the classify task for its kinds, no summarizer."""
    kinds = {kind: name for kind, name in settings.classify_packs.items() if name == pack}
    if not kinds:
        raise SystemExit(f"no document kind is classified with the pack {pack!r}")
    return {"classify_packs": kinds, "summarize_packs": {}}


class Nightclerk:
    """``workers`` worker processes over one fresh store; a context manager that stops them and cleans up."""

    def __init__(
        self,
        settings: Settings,
        work: Path,
        *,
        workers: int,
        threads: int,
        database_url: str,
        schema: str,
        serves: str | None = None,
    ) -> None:
        """``serves``: a classification pack name -- the workers load that pack alone; None: every
        configured pack."""
        self.overrides: dict[str, object] = {
            "queue": QUEUE,
            "feed_stream": f"{QUEUE}:results",
            "database_url": database_url,
            "log_json": "true",
            "packs_dir": str(settings.packs_dir.resolve()),
            "intra_op_threads": str(threads),
            **(serving(settings, serves) if serves is not None else {}),
        }
        self.schema = schema if database_url.startswith("postgresql") else None
        if self.schema is not None:
            self.overrides["database_schema"] = self.schema
        self.settings = settings.with_overrides(**self.overrides)
        self.work = work
        self.workers = [
            WorkerProcess(self.overrides, work / f"worker-{i}.log", ready_timeout=300) for i in range(workers)
        ]
        self.store = ResultStore(self.settings.resolved_database_url, schema=self.schema)
        self.feed = FeedClock(self.settings.redis_url, self.settings.feed_stream)

    def reset(self) -> None:
        """An empty queue, ledger and feed, and an empty store."""
        clear_queue_keys(self.settings.redis_url)
        self.store.drop()
        self.store.create_schema()

    def __enter__(self) -> Nightclerk:
        """Start the workers on what is queued (call :meth:`reset` first for a clean start)."""
        for worker in self.workers:
            worker.launch()
        for worker in self.workers:
            worker.wait_ready()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        for worker in self.workers:
            worker.stop()
        self.store.drop()
        self.store.close()
        clear_queue_keys(self.settings.redis_url)
        self.feed.close()

    def worker_pids(self) -> list[int]:
        return [w.process.pid for w in self.workers if w.process is not None and w.process.poll() is None]

    def push(self, corpus: Corpus, tag: str, *, path: Path | None = None) -> int:
        summary = push_files(
            [path or corpus.path],
            repeat_mapping(corpus.mapping, tag),
            ["classify"],
            self.settings,
            rejects_path=self.work / f"rejects-{corpus.name}-{tag}.jsonl",
            progress=False,
        )
        if summary.rejected:
            raise SystemExit(f"{corpus.name}: {summary.rejected} documents rejected; see {self.work}")
        return int(summary.accepted)

    def check_alive(self) -> None:
        if any(w.process is not None and w.process.poll() is not None for w in self.workers):
            raise SystemExit(f"a worker exited; see its log under {self.work}")

    def wait_stored(self, target: int, started: float, *, timeout: float = 3600.0) -> list[tuple[float, int]]:
        """Wait until ``target`` documents announced since :meth:`FeedClock.mark` have their results;
        (seconds since ``started``, a Redis time, documents stored) at each announcement."""
        return self.feed.wait(target, started, timeout=timeout, check=self.check_alive)

    def warm_up(self, corpus: Corpus) -> None:
        """One chunk through every worker's path before timing: first connections, allocations, imports
        (the bare limit gets its warm-up call too)."""
        head = csv_head(corpus.path, self.work / f"warm-{corpus.name}.csv", 64 * len(self.workers))
        self.feed.mark()
        accepted = self.push(corpus, "warm", path=head)
        self.wait_stored(accepted, self.feed.redis_now())

    def run(self, corpus: Corpus, tag: str) -> Timed:
        """Push ``corpus`` (``e2e_passes`` times, each under its own name); time it until every result is
        stored."""
        self.feed.mark()
        with PeakSampler(self.worker_pids, self.settings.redis_url) as sampler:
            started = self.feed.redis_now()
            clock = time.perf_counter()
            accepted = sum(self.push(corpus, f"{tag}p{i}") for i in range(corpus.e2e_passes))
            pushed = time.perf_counter() - clock
            progress = self.wait_stored(accepted, started)
        seconds = progress[-1][0]
        return Timed(accepted, seconds, pushed, sampler.peak_pss_mib, sampler.peak_redis_mib, progress)


@dataclass
class EndToEndRow:
    corpus: str
    pack: str
    workers: int
    threads: int
    docs: int
    docs_per_s: Spread = field(default_factory=Spread)
    bare: Spread = field(default_factory=Spread)  # the limit, measured beside each repetition
    peak_workers_mib: Spread = field(default_factory=Spread)
    peak_redis_mib: Spread = field(default_factory=Spread)

    def as_dict(self) -> dict[str, Any]:
        return {
            "corpus": self.corpus,
            "pack": self.pack,
            "workers": self.workers,
            "threads_per_worker": self.threads,
            "docs": self.docs,
            "docs_per_s": self.docs_per_s.as_dict(),
            "bare_docs_per_s": self.bare.as_dict(),
            "peak_workers_pss_mib": self.peak_workers_mib.as_dict(),
            "peak_redis_growth_mib": self.peak_redis_mib.as_dict(),
        }


def run_end_to_end(
    corpora: list[Corpus],
    settings: Settings,
    work: Path,
    *,
    worker_counts: tuple[int, ...],
    cores: int,
    reps: int,
    database_url: str,
    schema: str,
    bare: Callable[[Corpus], float],
    say: Callable[[str], None],
) -> list[EndToEndRow]:
    """For each worker count and corpus, start workers serving the corpus's pack; then per repetition: the
    bare limit on the same texts, then nightclerk end to end, side by side."""
    rows: list[EndToEndRow] = []
    for count in worker_counts:
        threads = max(1, cores // count)
        for corpus in corpora:
            row = EndToEndRow(corpus.name, corpus.pack, count, threads, len(corpus.texts) * corpus.e2e_passes)
            rows.append(row)
            cluster = Nightclerk(
                settings,
                work / f"e2e-{count}w-{corpus.name}",
                workers=count,
                threads=threads,
                database_url=database_url,
                schema=schema,
                serves=corpus.pack,
            )
            cluster.reset()
            with cluster:
                cluster.warm_up(corpus)
                for rep in range(reps):
                    row.bare.add(bare(corpus))
                    timed = cluster.run(corpus, f"e2e{count}w{rep}")
                    row.docs_per_s.add(timed.docs_per_s)
                    row.peak_workers_mib.add(timed.peak_workers_mib)
                    row.peak_redis_mib.add(timed.peak_redis_mib)
                    say(
                        f"  e2e {count} worker(s) rep {rep + 1}/{reps} {corpus.name}: bare "
                        f"{row.bare.values[-1]:.1f}, end to end {timed.docs_per_s:.1f} docs/s "
                        f"(push {timed.push_seconds:.2f} s, workers {timed.peak_workers_mib:.0f} MiB)"
                    )
    return rows
