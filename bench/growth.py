"""(6) Cost of growth: 1k, 10k, 100k documents queued before one worker starts.

Work orders (short, so 100k drain in minutes): the corpus slice pushed as many times as needed under new
source names, with no worker running, so the whole backlog waits in Redis (queue and chunk ledger). Then one
worker starts and drains it. Reported: push time, Redis memory held by the backlog, drain docs/s overall
and per quarter of the backlog (flat means the backlog does not slow the worker), from the moment the worker
is ready to its last stored chunk as the change feed stamps them, and the worker's peak PSS (bounded means
it does not grow with the backlog).
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

from bench.corpora import Corpus
from bench.endtoend import Nightclerk
from bench.sampler import PeakSampler
from nightclerk.cli.worker_process import READY_MARK
from nightclerk.shared.settings import Settings


@dataclass
class GrowthRow:
    queued: int
    push_seconds: float = 0.0
    redis_backlog_mib: float = 0.0
    drain_docs_per_s: float = 0.0
    quarter_docs_per_s: list[float] = field(default_factory=list)
    peak_worker_mib: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _slice(corpus: Corpus, rows: int, work: Path) -> Path:
    target = work / f"{corpus.name}-{rows}.csv"
    with corpus.path.open(newline="", encoding="utf-8") as src, target.open("w", newline="") as dst:
        reader, writer = csv.reader(src), csv.writer(dst)
        for index, record in enumerate(reader):
            if index > rows:
                break
            writer.writerow(record)
    return target


def ready_at(log: Path) -> float:
    """The Unix time stamped on the worker's JSON log line saying it is ready (the same clock as Redis's on
    one host; polling for the line would be up to a poll late)."""
    for line in log.read_text(errors="replace").splitlines():
        if READY_MARK in line and line.startswith("{"):
            return datetime.fromisoformat(json.loads(line)["timestamp"]).timestamp()
    raise SystemExit(f"no ready line in {log}")


BURST_GAP_S = 0.05  # a chunk's announcements are one pipeline, well under this apart; chunks are further


def _chunk_steps(progress: list[tuple[float, int]]) -> list[tuple[float, int]]:
    """The feed's per-document stamps -> one (seconds, documents stored) step per chunk, at its last stamp."""
    steps: list[tuple[float, int]] = []
    for t, n in progress:
        if steps and t - steps[-1][0] < BURST_GAP_S:
            steps[-1] = (t, n)
        else:
            steps.append((t, n))
    return steps


def _time_at(steps: list[tuple[float, int]], stored: int) -> float:
    """When ``stored`` documents were stored: between two chunks' stamps the count is taken to grow evenly (a
    quarter may end inside a chunk of hundreds of work orders)."""
    before_t, before_n = 0.0, 0
    for t, n in steps:
        t = max(t, 0.0)
        if n >= stored:
            return before_t + (stored - before_n) / max(n - before_n, 1) * (t - before_t)
        before_t, before_n = t, n
    raise ValueError(f"only {before_n} of {stored} documents were stored")


def _quarters(progress: list[tuple[float, int]], total: int) -> list[float]:
    """docs/s over each quarter of the backlog, from the (seconds since the worker was ready, documents
    stored) seen while it drained."""
    steps = _chunk_steps(progress)
    bounds = [_time_at(steps, total * q // 4) if q else 0.0 for q in range(5)]
    return [(total // 4) / max(high - low, 1e-9) for low, high in pairwise(bounds)]


def run_growth(
    corpus: Corpus,
    settings: Settings,
    work: Path,
    *,
    levels: tuple[int, ...],
    cores: int,
    database_url: str,
    schema: str,
    say: Callable[[str], None],
) -> list[GrowthRow]:
    rows = []
    base = min(len(corpus.texts), 5000)
    for level in levels:
        row = GrowthRow(level)
        rows.append(row)
        cluster = Nightclerk(
            settings,
            work / f"growth-{level}",
            workers=1,
            threads=cores,
            database_url=database_url,
            schema=schema,
        )
        (work / f"growth-{level}").mkdir(parents=True, exist_ok=True)
        cluster.reset()
        queued = 0
        with PeakSampler(lambda: [], settings.redis_url) as redis_sampler:
            started = time.perf_counter()
            copy = 0
            while queued < level:
                rows_now = min(base, level - queued)
                path = corpus.path if rows_now == len(corpus.texts) else _slice(corpus, rows_now, work)
                queued += cluster.push(corpus, f"g{level}c{copy}", path=path)
                copy += 1
            row.push_seconds = time.perf_counter() - started
        row.redis_backlog_mib = redis_sampler.peak_redis_mib
        cluster.feed.mark()
        with cluster, PeakSampler(cluster.worker_pids) as worker_sampler:
            # timed from the moment the worker says it is ready (packs loaded) to its last stored chunk
            progress = cluster.wait_stored(queued, ready_at(cluster.workers[0].log_path))
        row.drain_docs_per_s = queued / max(progress[-1][0], 1e-9)
        row.quarter_docs_per_s = _quarters(progress, queued)
        row.peak_worker_mib = worker_sampler.peak_pss_mib
        say(
            f"  growth {level}: push {row.push_seconds:.1f} s, Redis +{row.redis_backlog_mib:.1f} MiB, "
            f"drain {row.drain_docs_per_s:.1f} docs/s (quarters "
            + ", ".join(f"{r:.0f}" for r in row.quarter_docs_per_s)
            + f"), worker {row.peak_worker_mib:.0f} MiB"
        )
    return rows
