"""Waiting out an outage with the chunk in hand: the store or Redis is away, the worker retries in place.

A database failover or a Redis restart makes every chunk fail alike, so handing each one back to the queue
would only churn through the queue (and, on Redis, park them all in this worker as delayed messages).
Instead the worker retries the one operation that failed -- a lookup, the write of finished rows, an
announcement -- with exponential backoff and jitter (``shared/retrying.py``) for up to ``outage_wait_s``;
inference already done is kept. Past that the error goes up and the task hands the chunk back with a delay.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from nightclerk.shared.errors import FeedUnavailable, StoreUnavailable
from nightclerk.shared.logging import get_logger
from nightclerk.shared.retrying import retry_transient
from nightclerk.workers import metrics

log = get_logger(__name__)
T = TypeVar("T")


def failure_reason(exc: BaseException | None) -> str:
    """The metrics reason of a transient error."""
    if isinstance(exc, StoreUnavailable):
        return "store_unavailable"
    return "feed_unavailable" if isinstance(exc, FeedUnavailable) else "broker_unavailable"


class Patience:
    def __init__(self, budget_s: float, *, first_wait_s: float = 0.5) -> None:
        self.budget_s = budget_s
        self.first_wait_s = first_wait_s

    def call(self, operation: Callable[[], T], *, what: str, chunk_id: str) -> T:
        """``operation()``, retried on a transient error until it succeeds or the budget is spent; each
        wait is counted and logged."""

        def waiting(failure: BaseException | None, attempt: int, next_wait_s: float) -> None:
            metrics.FAILURES.labels(reason=failure_reason(failure)).inc()
            log.warning("outage_waiting", operation=what, chunk_id=chunk_id, error=type(failure).__name__,
                        attempt=attempt, next_wait_s=round(next_wait_s, 2))  # fmt: skip

        return retry_transient(
            operation, budget_s=self.budget_s, first_wait_s=self.first_wait_s, on_wait=waiting
        )
