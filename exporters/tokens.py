"""Tokenize exactly as the worker does, and cut token lists into padded int64 batches.

The worker cuts a text to ``max_tokens`` whitespace words, tokenizes it with the pack's ``tokenizer.json``
(truncation at ``max_tokens``, no padding) and pads with 0. Training, parity and evaluation here go through
the same steps, so the figures in a manifest describe what a worker will compute.
(:func:`cut_to_words` is the one in ``nightclerk.shared.text_budget`` that the worker uses.)
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from nightclerk.shared.text_budget import cut_to_words

Encoded = list[list[int]]


def load_tokenizer(path: Path, max_tokens: int) -> Tokenizer:
    """The tokenizer with truncation at ``max_tokens`` and no padding (the file may say otherwise)."""
    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=max_tokens)
    return tokenizer


def encode(tokenizer: Tokenizer, texts: Sequence[str], max_tokens: int) -> Encoded:
    cut = [cut_to_words(text, max_tokens) for text in texts]
    return [list(encoding.ids) for encoding in tokenizer.encode_batch(cut, add_special_tokens=True)]


def pad(rows: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
    """``input_ids`` and ``attention_mask`` as int64 ``(len(rows), longest)``, padded with 0."""
    width = max((len(row) for row in rows), default=1)
    ids = np.zeros((len(rows), width), dtype=np.int64)
    mask = np.zeros((len(rows), width), dtype=np.int64)
    for index, row in enumerate(rows):
        ids[index, : len(row)] = row
        mask[index, : len(row)] = 1
    return ids, mask


def batch_indices(encoded: Encoded, batch_size: int, *, shuffle_seed: int | None = None) -> list[list[int]]:
    """Index batches: longest first (as the worker plans them), or a seeded random order."""
    if shuffle_seed is None:
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]), reverse=True)
    else:
        order = [int(i) for i in np.random.default_rng(shuffle_seed).permutation(len(encoded))]
    return [order[start : start + batch_size] for start in range(0, len(order), batch_size)]


def padded_batches(
    encoded: Encoded, batch_size: int, *, shuffle_seed: int | None = None
) -> Iterator[tuple[list[int], np.ndarray, np.ndarray]]:
    """``(indices, input_ids, attention_mask)`` per batch."""
    for indices in batch_indices(encoded, batch_size, shuffle_seed=shuffle_seed):
        ids, mask = pad([encoded[i] for i in indices])
        yield indices, ids, mask
