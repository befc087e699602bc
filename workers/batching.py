"""Plan length-sorted inference batches under a padded-token budget, and pad token rows into arrays."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from nightclerk.shared.errors import InferenceError


def pad_rows(rows: Sequence[Sequence[int]], pad_id: int, *, left: bool) -> tuple[np.ndarray, np.ndarray]:
    """``input_ids`` and ``attention_mask`` (int64, rows x longest), padded on the left or the right.

    Decoder-only generation pads on the left, so every row's next token follows the last column.
    """
    if not rows or any(len(row) == 0 for row in rows):
        raise InferenceError("every input needs at least one token")
    width = max(len(row) for row in rows)
    ids = np.full((len(rows), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(rows), width), dtype=np.int64)
    for index, row in enumerate(rows):
        span = slice(width - len(row), width) if left else slice(0, len(row))
        ids[index, span] = row
        mask[index, span] = 1
    return ids, mask


def plan_batches(
    lengths: Sequence[int], token_budget: int, max_docs: int, *, min_fill: float = 0.0
) -> list[list[int]]:
    """Group indices so each batch's ``docs x longest`` stays within ``token_budget``.

    Longest first, so each batch pads to a length close to all its members'. A document longer than the
    budget still gets a batch of its own. With ``min_fill`` a document shorter than that share of its
    batch's longest starts a new batch: less padding for more, smaller batches (an encoder's cost is its
    padded tokens; a decoder's batch is better kept whole, so generation leaves it at 0).
    """
    order = sorted(range(len(lengths)), key=lambda i: lengths[i], reverse=True)
    batches: list[list[int]] = []
    current: list[int] = []
    width = 0
    for index in order:
        length = max(lengths[index], 1)
        if current and (
            len(current) >= max_docs
            or max(width, length) * (len(current) + 1) > token_budget
            or length < min_fill * width
        ):
            batches.append(current)
            current = []
        if not current:
            width = length
        current.append(index)
        width = max(width, length)
    if current:
        batches.append(current)
    return batches
