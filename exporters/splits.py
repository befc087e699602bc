"""Deduplicate, choose the label set, subsample and split -- deterministic for a given seed.

Deduplication keeps **one copy of each text with its majority label**. MTSamples files the same report
under several specialties (a knee arthroscopy under both *Orthopedic* and *Surgery*), and in that file every
conflict is a tie: dropping all conflicting copies would throw away 1,763 of its 1,934 distinct reports.
Ties go to the label that is rarer in the whole file -- the more specific one (*Orthopedic* over the
catch-all *Surgery*) -- and then to the alphabetically first, so the result does not depend on row order.
Texts are compared after collapsing whitespace, so that copies differing only in spacing count as one.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

Row = tuple[str, str]
OTHER = "other"


@dataclass(frozen=True)
class Deduplicated:
    rows: list[Row]
    duplicates_dropped: int  # rows removed as copies of a kept text
    conflicting_texts: int  # distinct texts that carried more than one label


@dataclass(frozen=True)
class Split:
    train: list[Row]
    eval: list[Row]


def _key(text: str) -> str:
    return " ".join(text.split())


def dedupe(rows: Sequence[Row]) -> Deduplicated:
    """One row per distinct text, labelled with its majority label (ties: rarer label overall, then name)."""
    overall = Counter(label for _, label in rows)
    first_text: dict[str, str] = {}
    labels: dict[str, Counter[str]] = defaultdict(Counter)
    for text, label in rows:
        key = _key(text)
        first_text.setdefault(key, text)
        labels[key][label] += 1
    kept: list[Row] = []
    conflicting = 0
    for key, text in first_text.items():  # dicts keep first-seen order
        votes = labels[key]
        conflicting += len(votes) > 1
        top = max(votes.values())
        winner = min((label for label, n in votes.items() if n == top), key=lambda lab: (overall[lab], lab))
        kept.append((text, winner))
    return Deduplicated(kept, len(rows) - len(kept), conflicting)


def label_counts(rows: Sequence[Row]) -> dict[str, int]:
    """Label -> rows, most frequent first (ties by name)."""
    counts = Counter(label for _, label in rows)
    return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))


def select_labels(
    rows: Sequence[Row], top_n: int, *, min_examples: int = 10, other: str = OTHER
) -> list[str]:
    """The ``top_n`` most frequent labels with at least ``min_examples`` rows, then ``other``.

    ``other`` (last) collects every remaining label, and is only added when those rows reach ``min_examples``
    themselves; otherwise :func:`apply_labels` drops them.
    """
    counts = label_counts(rows)
    chosen = [label for label, n in counts.items() if n >= min_examples and label != other][:top_n]
    rest = sum(n for label, n in counts.items() if label not in chosen)
    if rest >= min_examples:
        chosen.append(other)
    return chosen


def apply_labels(rows: Sequence[Row], labels: Sequence[str], *, other: str = OTHER) -> list[Row]:
    """Map labels outside ``labels`` to ``other`` when it is one of them; drop those rows otherwise."""
    keep = set(labels)
    fallback = other if other in keep else None
    mapped: list[Row] = []
    for text, label in rows:
        if label in keep:
            mapped.append((text, label))
        elif fallback is not None:
            mapped.append((text, fallback))
    return mapped


def _by_label(rows: Sequence[Row]) -> dict[str, list[int]]:
    groups: dict[str, list[int]] = defaultdict(list)
    for index, (_, label) in enumerate(rows):
        groups[label].append(index)
    return {label: groups[label] for label in sorted(groups)}


def stratified_indices(labels: Sequence[str], eval_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Train and eval indices with each label's share preserved; a label with 2+ rows gets 1+ in each."""
    if not 0.0 < eval_fraction < 1.0:
        raise ValueError(f"eval_fraction must be in (0, 1), got {eval_fraction}")
    rng = np.random.default_rng(seed)
    train: list[int] = []
    held: list[int] = []
    for members in _by_label([("", label) for label in labels]).values():
        order = [members[i] for i in rng.permutation(len(members))]
        n_eval = 0 if len(order) < 2 else min(len(order) - 1, max(1, round(len(order) * eval_fraction)))
        held.extend(order[:n_eval])
        train.extend(order[n_eval:])
    return sorted(train), sorted(held)


def stratified_split(rows: Sequence[Row], eval_fraction: float = 0.2, seed: int = 0) -> Split:
    train, held = stratified_indices([label for _, label in rows], eval_fraction, seed)
    return Split([rows[i] for i in train], [rows[i] for i in held])


def stratified_sample(rows: Sequence[Row], max_rows: int, seed: int = 0) -> list[Row]:
    """At most ``max_rows`` rows, each label keeping its share (and at least 2 rows where it had them)."""
    if len(rows) <= max_rows:
        return list(rows)
    rng = np.random.default_rng(seed)
    ratio = max_rows / len(rows)
    chosen: list[int] = []
    for members in _by_label(rows).values():
        take = min(len(members), max(2, round(len(members) * ratio)))
        chosen.extend(members[i] for i in rng.permutation(len(members))[:take])
    return [rows[i] for i in sorted(chosen)]


def cap_per_label(rows: Sequence[Row], max_per_label: int, seed: int = 0) -> list[Row]:
    """At most ``max_per_label`` rows of each label (a seeded random choice), in the original order.

    For a heavily skewed label (PubMed: 88 % research articles) a proportional cap leaves the rare labels a
    handful of eval rows; capping each label keeps all of the rare ones and a sample of the common ones.
    """
    if max_per_label < 1:
        raise ValueError(f"max_per_label must be at least 1, got {max_per_label}")
    rng = np.random.default_rng(seed)
    chosen: list[int] = []
    for members in _by_label(rows).values():
        if len(members) <= max_per_label:
            chosen.extend(members)
        else:
            chosen.extend(members[i] for i in rng.permutation(len(members))[:max_per_label])
    return [rows[i] for i in sorted(chosen)]
