"""Waiting out an outage with the chunk in hand: the store or Redis is away, the worker retries in place.

A database failover or a Redis restart makes every chunk fail alike, so handing each one back to the queue
would only churn through the queue (and, on Redis, park them all in this worker as delayed messages).
Instead the worker retries the one operation that failed -- a lookup, the write of finished rows, an
announcement -- with exponential backoff and jitter (tenacity) for up to ``outage_wait_s``; inference
already done is kept. Past that the error goes up and the task hands the chunk back with a delay.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_delay,
    wait_exponential_jitter,
)

from nightclerk.shared.errors import BrokerUnavailable, FeedUnavailable, StoreUnavailable
from nightclerk.shared.logging import get_logger
from nightclerk.workers import metrics

log = get_logger(__name__)
T = TypeVar("T")
TRANSIENT = (StoreUnavailable, FeedUnavailable, BrokerUnavailable)
LONGEST_WAIT_S = 30.0


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
        """``operation()``, retried on a transient error until it succeeds or the budget is spent."""

        def waiting(state: RetryCallState) -> None:
            failure = state.outcome.exception() if state.outcome is not None else None
            metrics.FAILURES.labels(reason=failure_reason(failure)).inc()
            log.warning(
                "outage_waiting",
                operation=what,
                chunk_id=chunk_id,
                error=type(failure).__name__,
                attempt=state.attempt_number,
                next_wait_s=round(state.upcoming_sleep, 2),
            )

        retrying = Retrying(
            retry=retry_if_exception_type(TRANSIENT),
            wait=wait_exponential_jitter(multiplier=self.first_wait_s, max=LONGEST_WAIT_S),
            stop=stop_after_delay(self.budget_s),
            before_sleep=waiting,
            reraise=True,
        )
        result: T = retrying(operation)
        return result
