"""(6) Cost of growth: 1k, 10k, 100k documents queued before one worker starts.

Work orders (short, so 100k drain in minutes): the corpus slice pushed as many times as needed under new
source names, with no worker running, so the whole backlog waits in Redis (queue and chunk ledger). Then one
worker starts and drains it. Reported: push time, Redis memory held by the backlog, drain docs/s overall
and per quarter of the backlog (flat means the backlog does not slow the worker), from the worker's first
stored chunk to its last as the change feed stamps them, and the worker's peak PSS (bounded means it does
not grow with the backlog).
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.corpora import Corpus
from bench.endtoend import Nightclerk
from bench.sampler import PeakSampler
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


def _quarters(progress: list[tuple[float, int]], start: int, total: int) -> list[float]:
    """docs/s over each quarter of the backlog, from the (seconds, documents stored) seen while it drained."""
    rates = []
    for q in range(4):
        low, high = start + total * q // 4, start + total * (q + 1) // 4
        t_low = next(t for t, n in progress if n >= low)
        t_high = next(t for t, n in progress if n >= high)
        rates.append((high - low) / max(t_high - t_low, 1e-9))
    return rates


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
            # the worker drains from the moment it is ready: time it from its first stored chunk to its last
            progress = cluster.wait_stored(queued, cluster.feed.redis_now())
        first_s, first = progress[0]
        row.drain_docs_per_s = (queued - first) / max(progress[-1][0] - first_s, 1e-9)
        row.quarter_docs_per_s = _quarters(progress, first, queued - first)
        row.peak_worker_mib = worker_sampler.peak_pss_mib
        say(
            f"  growth {level}: push {row.push_seconds:.1f} s, Redis +{row.redis_backlog_mib:.1f} MiB, "
            f"drain {row.drain_docs_per_s:.1f} docs/s (quarters "
            + ", ".join(f"{r:.0f}" for r in row.quarter_docs_per_s)
            + f"), worker {row.peak_worker_mib:.0f} MiB"
        )
    return rows
