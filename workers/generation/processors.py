"""Score adjustments applied before each token is chosen, with the semantics of ``transformers``'
``RepetitionPenaltyLogitsProcessor`` and ``NoRepeatNGramLogitsProcessor`` (so parity tests can hold).

``histories`` are the token sequences the scores belong to, one per row, without padding: the prompt and
what was generated so far (decoder-only), or the decoder's tokens from its start token (encoder-decoder).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from nightclerk.workers.generation.settings import DecodeSettings


def penalize_repetition(scores: np.ndarray, histories: Sequence[Sequence[int]], penalty: float) -> None:
    """In place: a token seen in its row's history has its score divided by ``penalty`` when positive and
    multiplied when negative (both make it less likely for ``penalty`` > 1)."""
    for row, history in enumerate(histories):
        if not history:
            continue
        seen = np.unique(np.asarray(history, dtype=np.int64))
        values = scores[row, seen]
        scores[row, seen] = np.where(values < 0, values * penalty, values / penalty)


def ban_repeated_ngrams(scores: np.ndarray, histories: Sequence[Sequence[int]], size: int) -> None:
    """In place: a token that would complete an n-gram already present in its row's history gets -inf."""
    for row, history in enumerate(histories):
        if len(history) + 1 < size:
            continue
        prefix = tuple(history[len(history) - size + 1 :]) if size > 1 else ()
        banned = {
            history[start + size - 1]
            for start in range(len(history) - size + 1)
            if tuple(history[start : start + size - 1]) == prefix
        }
        if banned:
            scores[row, sorted(banned)] = -np.inf


def adjust(scores: np.ndarray, histories: Sequence[Sequence[int]], settings: DecodeSettings) -> np.ndarray:
    """The scores with every configured adjustment applied (float32, a copy)."""
    out = np.array(scores, dtype=np.float32, copy=True)
    if settings.repetition_penalty != 1.0:
        penalize_repetition(out, histories, settings.repetition_penalty)
    if settings.no_repeat_ngram_size > 0:
        ban_repeated_ngrams(out, histories, settings.no_repeat_ngram_size)
    return out


def log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    result: np.ndarray = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    return result
