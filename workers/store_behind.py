"""Writing a chunk's finished rows on a thread of their own while the worker infers the chunk's next part.

One worker process runs a chunk's inference and its store writes in series: on 1,024 work orders the
write, the lookup and the announcement are about a seventh of the chunk, with a core idle while PostgreSQL
commits. ONNX Runtime and psycopg both release the GIL, so the write of part n can run beside the
inference of part n + 1. The rows still go in one at a time, in order, on one thread (one connection, no
reordering), and the chunk's task waits for every write before it returns: acknowledged still means stored.

A write that fails for good stops the chunk before its next part is inferred; leaving the block waits for
every write already handed over, so nothing is still being written while the task decides what to do.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from types import TracebackType

from nightclerk.shared.results import ResultRow

# (rows new in the store, refused rows by document id with the reason)
Written = tuple[int, dict[str, str]]


class StoreBehind:
    """``submit`` a part's rows, go on inferring; ``written()`` once all are submitted."""

    def __init__(self, executor: ThreadPoolExecutor, write: Callable[[list[ResultRow]], Written]) -> None:
        self._executor = executor
        self._write = write
        self._pending: list[Future[Written]] = []

    def __enter__(self) -> StoreBehind:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        wait(self._pending)

    def submit(self, rows: list[ResultRow]) -> None:
        """Hand these rows to the writer; first raise the error of a write that already failed."""
        for future in self._pending:
            if future.done() and future.exception() is not None:
                future.result()
        if rows:
            # the log context (chunk id, task) goes with the rows to the writer's thread
            context = contextvars.copy_context()
            self._pending.append(self._executor.submit(context.run, self._write, rows))

    def written(self) -> Written:
        """Every part's outcome together, once each is written; the first failed write's error, if any."""
        new = 0
        refused: dict[str, str] = {}
        for future in self._pending:
            stored, turned_down = future.result()
            new += stored
            refused.update(turned_down)
        return new, refused
