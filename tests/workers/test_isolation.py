"""Bisection finds the documents that sink a batch; each is tried a bounded number of times alone."""

from __future__ import annotations

import pytest

from nightclerk.shared.errors import InferenceError
from nightclerk.workers.isolation import run_isolated


class Runtime:
    """A stand-in runtime over integers: fails a whole call when it holds a poisoned number."""

    def __init__(self, poisoned: set[int], *, heal_after: int | None = None) -> None:
        self.poisoned = poisoned
        self.heal_after = heal_after  # calls after which the poison stops failing (a transient fault)
        self.calls: list[list[int]] = []

    def __call__(self, batch: list[int]) -> list[str]:
        self.calls.append(batch)
        healed = self.heal_after is not None and len(self.calls) > self.heal_after
        if not healed and self.poisoned.intersection(batch):
            raise InferenceError(f"inference failed on a batch of {len(batch)}")
        return [f"row {n}" for n in batch]


def test_a_clean_batch_runs_once() -> None:
    runtime = Runtime(set())
    isolated = run_isolated(runtime, list(range(64)), attempts=3, backoff_s=0)
    assert len(isolated.results) == 64 and isolated.failures == [] and len(runtime.calls) == 1


def test_one_poison_document_among_64_costs_a_logarithmic_number_of_calls() -> None:
    runtime = Runtime({37})
    isolated = run_isolated(runtime, list(range(64)), attempts=3, backoff_s=0)
    assert sorted(isolated.results) == sorted(f"row {n}" for n in range(64) if n != 37)
    ((document, reason, attempts),) = isolated.failures
    assert (document, attempts) == (37, 3)
    assert reason == "InferenceError: inference failed on a batch of 1"
    # 1 whole + 2 per level for 6 levels + 2 more tries alone = 15, far below one call per document
    assert len(runtime.calls) == 1 + 2 * 6 + 2
    assert [call for call in runtime.calls if call == [37]] == [[37]] * 3


def test_several_poison_documents_are_each_given_up_and_the_rest_stored() -> None:
    runtime = Runtime({0, 5, 6, 63})
    isolated = run_isolated(runtime, list(range(64)), attempts=2, backoff_s=0)
    assert sorted(d for d, _, _ in isolated.failures) == [0, 5, 6, 63]
    assert all(attempts == 2 for _, _, attempts in isolated.failures)
    assert len(isolated.results) == 60


def test_a_transient_failure_passes_on_a_later_attempt() -> None:
    runtime = Runtime({3}, heal_after=3)  # fails the batch, its halves... then works
    isolated = run_isolated(runtime, [1, 2, 3, 4], attempts=3, backoff_s=0)
    assert isolated.failures == [] and sorted(isolated.results) == ["row 1", "row 2", "row 3", "row 4"]


def test_a_foreign_error_is_reported_by_type_and_place_not_message() -> None:
    secret = "PHI-SECRET-7f3a"

    def leaky(batch: list[int]) -> list[str]:
        raise ValueError(f"could not read {secret}")  # a library quoting its input

    ((_, reason, attempts),) = run_isolated(leaky, [1], attempts=1, backoff_s=0).failures
    assert reason.startswith("ValueError at test_isolation.py:") and secret not in reason and attempts == 1


def test_a_rust_panic_is_isolated_like_an_exception() -> None:
    PanicException = type("PanicException", (BaseException,), {})  # pyo3's, as tokenizers raises it

    def panicking(batch: list[int]) -> list[str]:
        if 2 in batch:
            raise PanicException("tokenizer panicked")
        return [str(n) for n in batch]

    isolated = run_isolated(panicking, [1, 2, 3], attempts=1, backoff_s=0)
    assert [d for d, _, _ in isolated.failures] == [2] and isolated.results == ["1", "3"]


def test_an_interrupt_is_not_swallowed() -> None:
    def interrupted(batch: list[int]) -> list[str]:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_isolated(interrupted, [1, 2], attempts=3, backoff_s=0)
