"""Score adjustments against the ``transformers`` logits processors they mirror."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers.generation.logits_process import (
    NoRepeatNGramLogitsProcessor,
    RepetitionPenaltyLogitsProcessor,
)

from nightclerk.workers.generation.processors import ban_repeated_ngrams, log_softmax, penalize_repetition

HISTORIES = [[5, 6, 7, 5, 6], [1, 2, 3, 4, 1], [9, 9, 9, 9, 9]]


def _scores(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(3, 12)).astype(np.float32)


@pytest.mark.parametrize("penalty", [0.7, 1.3, 2.0])
def test_repetition_penalty_matches_transformers(penalty: float) -> None:
    scores = _scores(0)
    expected = RepetitionPenaltyLogitsProcessor(penalty)(
        torch.tensor(HISTORIES), torch.tensor(scores)
    ).numpy()
    penalize_repetition(scores, HISTORIES, penalty)
    np.testing.assert_allclose(scores, expected, rtol=1e-6)


@pytest.mark.parametrize("size", [1, 2, 3, 6])
def test_no_repeat_ngram_matches_transformers(size: int) -> None:
    scores = _scores(1)
    expected = NoRepeatNGramLogitsProcessor(size)(torch.tensor(HISTORIES), torch.tensor(scores)).numpy()
    ban_repeated_ngrams(scores, HISTORIES, size)
    np.testing.assert_array_equal(np.isinf(scores), np.isinf(expected))
    np.testing.assert_allclose(scores[~np.isinf(scores)], expected[~np.isinf(expected)])
    if size == 2:  # [5, 6, 7, 5, 6]: after 6 comes 7 once, so 7 is banned
        assert np.isneginf(scores[0, 7]) and np.isfinite(scores[0, 8])


def test_log_softmax_is_normalized_and_stable() -> None:
    out = log_softmax(np.array([[1000.0, 1000.0, -1000.0]], dtype=np.float32))
    np.testing.assert_allclose(np.exp(out).sum(), 1.0, rtol=1e-6)
    np.testing.assert_allclose(out[0, :2], np.log(0.5), rtol=1e-6)
