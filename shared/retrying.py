"""Retrying one operation while a service is away: exponential backoff with jitter, for a time budget.

Transient means an ``…Unavailable`` error -- the store, the change feed or the broker cannot be reached --
never a refusal, which retrying cannot fix. Workers wait out an outage with this (``workers/patience.py``),
producers a Redis restart while they send (``chunk_sender.py``). tenacity does the waiting.
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

T = TypeVar("T")
TRANSIENT = (StoreUnavailable, FeedUnavailable, BrokerUnavailable)
# on_wait(the error, the attempt that failed, seconds until the next)
OnWait = Callable[[BaseException | None, int, float], None]


def retry_transient(
    operation: Callable[[], T],
    *,
    budget_s: float,
    first_wait_s: float = 0.5,
    longest_wait_s: float = 30.0,
    on_wait: OnWait | None = None,
) -> T:
    """``operation()``, tried again on a transient error until it succeeds or ``budget_s`` is spent."""

    def waiting(state: RetryCallState) -> None:
        if on_wait is not None:
            failure = state.outcome.exception() if state.outcome is not None else None
            on_wait(failure, state.attempt_number, state.upcoming_sleep)

    retrying = Retrying(
        retry=retry_if_exception_type(TRANSIENT),
        wait=wait_exponential_jitter(multiplier=first_wait_s, max=longest_wait_s),
        stop=stop_after_delay(budget_s),
        before_sleep=waiting,
        reraise=True,
    )
    result: T = retrying(operation)
    return result
