"""Cut texts to a budget, then plan length-sorted batches under a padded-token budget.

A whitespace-separated word always yields at least one WordPiece token, so cutting a text to
``max_tokens`` words before tokenizing loses nothing that truncation would keep -- and spares the fast
tokenizer from tokenizing a 2,000-word note only to throw most of it away (~8x faster on long notes).
"""

from __future__ import annotations

from collections.abc import Sequence


def cut_to_words(text: str, max_words: int) -> str:
    parts = text.split(maxsplit=max_words)
    if len(parts) > max_words:
        parts = parts[:max_words]
    return " ".join(parts)


def plan_batches(lengths: Sequence[int], token_budget: int, max_docs: int) -> list[list[int]]:
    """Group indices so each batch's ``docs x longest`` stays within ``token_budget``.

    Longest first, so each batch pads to a length close to all its members'. A document longer than the
    budget still gets a batch of its own.
    """
    order = sorted(range(len(lengths)), key=lambda i: lengths[i], reverse=True)
    batches: list[list[int]] = []
    current: list[int] = []
    longest = 0
    for index in order:
        length = max(lengths[index], 1)
        width = max(longest, length)
        if current and (len(current) >= max_docs or width * (len(current) + 1) > token_budget):
            batches.append(current)
            current, width = [], length
        current.append(index)
        longest = width
    if current:
        batches.append(current)
    return batches
