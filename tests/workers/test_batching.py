from __future__ import annotations

import pytest

from nightclerk.workers.batching import plan_batches


def test_batches_cover_every_index_once_and_respect_the_budget() -> None:
    lengths = [5, 120, 7, 64, 128, 3, 90, 33] * 10
    batches = plan_batches(lengths, token_budget=512, max_docs=16)
    flat = sorted(i for batch in batches for i in batch)
    assert flat == list(range(len(lengths)))
    for batch in batches:
        assert len(batch) <= 16
        assert max(lengths[i] for i in batch) * len(batch) <= 512


def test_batches_are_length_sorted_so_padding_is_small() -> None:
    lengths = [10, 100, 11, 101, 12, 102]
    batches = plan_batches(lengths, token_budget=310, max_docs=3)
    assert [sorted(lengths[i] for i in b) for b in batches] == [[100, 101, 102], [10, 11, 12]]


def test_a_document_over_the_budget_gets_a_batch_of_its_own() -> None:
    assert plan_batches([1000, 4, 4], token_budget=100, max_docs=8) == [[0], [1, 2]]


def test_min_fill_starts_a_new_batch_for_a_much_shorter_document() -> None:
    lengths = [20, 19, 16, 15, 12, 9, 8, 4]
    assert plan_batches(lengths, token_budget=1000, max_docs=64) == [list(range(8))]
    batches = plan_batches(lengths, token_budget=1000, max_docs=64, min_fill=0.75)
    assert [[lengths[i] for i in b] for b in batches] == [[20, 19, 16, 15], [12, 9], [8], [4]]
    padded = sum(max(lengths[i] for i in b) * len(b) for b in batches)
    assert padded == 80 + 24 + 8 + 4 < 20 * len(lengths)


def test_pad_rows_left_and_right() -> None:
    import numpy as np

    from nightclerk.shared.errors import InferenceError
    from nightclerk.workers.batching import pad_rows

    ids, mask = pad_rows([[5, 6, 7], [8]], 0, left=True)
    assert ids.tolist() == [[5, 6, 7], [0, 0, 8]] and mask.tolist() == [[1, 1, 1], [0, 0, 1]]
    ids, mask = pad_rows([[5, 6, 7], [8]], 9, left=False)
    assert ids.tolist() == [[5, 6, 7], [8, 9, 9]] and mask.tolist() == [[1, 1, 1], [1, 0, 0]]
    assert ids.dtype == mask.dtype == np.int64
    for bad in ([], [[1], []]):
        with pytest.raises(InferenceError, match="at least one token"):
            pad_rows(bad, 0, left=True)
