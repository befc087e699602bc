"""Plan length-sorted inference batches under a padded-token budget."""

from __future__ import annotations

from collections.abc import Sequence


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
