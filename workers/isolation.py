"""Finding the document that sinks a batch, so the rest of its chunk is stored and it alone is given up.

Used for inference (documents whose batch fails) and for the store (rows a write refuses).

A runtime call fails for the whole batch when one document makes it fail. The batch is split in halves and
each half run again, down to single documents (one bad document among 64 costs about 2 log2(64) = 12 extra
calls, not 64). A document that fails alone is tried ``attempts`` times in all, with a doubling pause
between tries (a transient fault, e.g. device memory, may pass), and then reported as a failure with the
last reason. Reasons come from :func:`nightclerk.shared.errors.describe`: types and places, never text.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from nightclerk.shared.errors import describe

D = TypeVar("D")
R = TypeVar("R")


@dataclass
class Isolated(Generic[D, R]):
    results: list[R] = field(default_factory=list)
    failures: list[tuple[D, str, int]] = field(default_factory=list)  # (document, reason, attempts)

    def extend(self, other: Isolated[D, R]) -> None:
        self.results.extend(other.results)
        self.failures.extend(other.failures)


def failed_inference(exc: BaseException) -> bool:
    # A Rust panic in tokenizers arrives as pyo3's PanicException, a BaseException: it is the document's
    # fault as much as any Exception. KeyboardInterrupt, SystemExit and the like are not.
    return isinstance(exc, Exception) or type(exc).__name__ == "PanicException"


def run_isolated(
    run: Callable[[list[D]], list[R]],
    documents: Sequence[D],
    *,
    attempts: int,
    backoff_s: float = 0.5,
    isolate: Callable[[BaseException], bool] = failed_inference,
) -> Isolated[D, R]:
    """``run(documents)``; where it fails with an error ``isolate`` accepts, the documents that make it
    fail, each with its reason. Any other error goes up as it came."""
    if not documents:
        return Isolated()
    batch = list(documents)
    try:
        return Isolated(results=run(batch))
    except BaseException as exc:
        if not isolate(exc):
            raise
        failure = exc
    if len(batch) > 1:
        middle = len(batch) // 2
        found: Isolated[D, R] = Isolated()
        for half in (batch[:middle], batch[middle:]):
            found.extend(run_isolated(run, half, attempts=attempts, backoff_s=backoff_s, isolate=isolate))
        return found
    return _retry_alone(run, batch[0], failure, attempts, backoff_s, isolate)


def _retry_alone(
    run: Callable[[list[D]], list[R]],
    document: D,
    failure: BaseException,
    attempts: int,
    backoff_s: float,
    isolate: Callable[[BaseException], bool],
) -> Isolated[D, R]:
    reason = describe(failure)
    tried = 1
    while tried < attempts:
        time.sleep(backoff_s * 2 ** (tried - 1))
        tried += 1
        try:
            return Isolated(results=run([document]))
        except BaseException as exc:
            if not isolate(exc):
                raise
            reason = describe(exc)
    return Isolated(failures=[(document, reason, tried)])
