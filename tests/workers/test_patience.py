"""Waiting out an outage: a real store that is away, and one that comes back."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from nightclerk.shared.errors import InferenceError, StoreUnavailable
from nightclerk.shared.store import ResultStore
from nightclerk.workers import metrics
from nightclerk.workers.patience import Patience


def _failures(reason: str) -> float:
    return metrics.FAILURES.labels(reason=reason)._value.get()


def test_an_unreachable_store_is_retried_until_the_budget_is_spent() -> None:
    store = ResultStore("postgresql://nobody@127.0.0.1:1/none")  # nothing listens on port 1
    before = _failures("store_unavailable")
    started = time.monotonic()
    with pytest.raises(StoreUnavailable):
        Patience(2.0, first_wait_s=0.2).call(lambda: store.count(), what="store", chunk_id="c")
    assert 2.0 <= time.monotonic() - started < 12
    assert _failures("store_unavailable") - before >= 2  # every failed try is counted
    store.close()


def test_a_store_that_comes_back_is_used(tmp_path: Path) -> None:
    folder, away = tmp_path / "db", tmp_path / "away"
    store = ResultStore(f"sqlite:///{folder / 'results.db'}")
    store.create_schema()
    store.engine.dispose()
    folder.rename(away)  # the database is gone: SQLite cannot open it
    tries: list[int] = []

    def count() -> int:
        tries.append(1)
        if len(tries) == 3:
            away.rename(folder)  # ... and back before the third try
        return store.count()

    assert Patience(10.0, first_wait_s=0.05).call(count, what="store", chunk_id="c") == 0
    assert len(tries) == 3
    store.close()


def test_other_errors_are_not_waited_on() -> None:
    calls = []

    def failing() -> None:
        calls.append(1)
        raise InferenceError("not an outage")

    with pytest.raises(InferenceError):
        Patience(10.0).call(failing, what="x", chunk_id="c")
    assert calls == [1]


def test_no_budget_means_no_wait() -> None:
    store = ResultStore("postgresql://nobody@127.0.0.1:1/none")
    started = time.monotonic()
    with pytest.raises(StoreUnavailable):
        Patience(0.0).call(store.count, what="store", chunk_id="c")
    assert time.monotonic() - started < 5
    store.close()
