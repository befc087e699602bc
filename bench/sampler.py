"""Peak memory while something runs: the PSS of process trees and Redis's ``used_memory``.

PSS (proportional set size) counts a shared page once across the processes that map it, so Ray's shared
object store and forked Celery children are not counted twice; psutil reads it from ``smaps_rollup``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from types import TracebackType

import psutil
import redis

MIB = 2**20
# once a second: reading a process's smaps takes kernel time on the very cores being measured, and a loaded
# model's memory does not change faster than that
SAMPLE_S = 1.0


def tree_pss(root_pids: list[int]) -> int:
    """Bytes of PSS of these processes and all their descendants (those that vanish are skipped)."""
    seen: set[int] = set()
    total = 0
    for pid in root_pids:
        try:
            root = psutil.Process(pid)
            processes = [root, *root.children(recursive=True)]
        except psutil.Error:
            continue
        for process in processes:
            if process.pid in seen:
                continue
            seen.add(process.pid)
            try:
                total += process.memory_full_info().pss
            except psutil.Error:
                continue
    return total


class PeakSampler:
    """Samples every ``interval`` s in a thread; ``peak_pss_mib`` / ``peak_redis_mib`` once it stopped.

    ``pids`` is called at each sample, so processes started after the sampler are counted too. Redis is
    reported as growth over its ``used_memory`` when the sampler started (it serves other databases too).
    """

    def __init__(
        self, pids: Callable[[], list[int]], redis_url: str | None = None, *, interval: float = SAMPLE_S
    ) -> None:
        self.pids = pids
        self.redis = redis.Redis.from_url(redis_url) if redis_url else None
        self.interval = interval
        self.peak_pss = 0
        self.redis_base = self._redis_used()
        self.peak_redis = self.redis_base
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="peak-sampler", daemon=True)

    def _redis_used(self) -> int:
        if self.redis is None:
            return 0
        return int(self.redis.info("memory")["used_memory"])

    def sample(self) -> None:
        self.peak_pss = max(self.peak_pss, tree_pss(self.pids()))
        self.peak_redis = max(self.peak_redis, self._redis_used())

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    @property
    def peak_pss_mib(self) -> float:
        return self.peak_pss / MIB

    @property
    def peak_redis_mib(self) -> float:
        return (self.peak_redis - self.redis_base) / MIB

    def __enter__(self) -> PeakSampler:
        self.sample()
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()
