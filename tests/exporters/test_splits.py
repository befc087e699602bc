from __future__ import annotations

from collections import Counter

import pytest

from nightclerk.exporters.splits import (
    apply_labels,
    dedupe,
    label_counts,
    select_labels,
    stratified_sample,
    stratified_split,
)


def test_dedupe_keeps_one_copy_with_the_majority_label() -> None:
    rows = [("knee scope", "Orthopedic"), ("knee  scope ", "Orthopedic"), ("knee scope", "Surgery")]
    result = dedupe(rows)
    assert result.rows == [("knee scope", "Orthopedic")]
    assert result.duplicates_dropped == 2
    assert result.conflicting_texts == 1


def test_dedupe_breaks_ties_toward_the_rarer_label() -> None:
    rows = [("a", "Surgery"), ("b", "Surgery"), ("c", "Surgery"), ("x", "Surgery"), ("x", "Urology")]
    assert dict(dedupe(rows).rows)["x"] == "Urology"
    # order does not matter
    assert dict(dedupe(list(reversed(rows))).rows)["x"] == "Urology"


def test_dedupe_tie_on_equal_frequency_is_alphabetical() -> None:
    rows = [("t", "b"), ("t", "a"), ("u", "a"), ("v", "b")]
    assert dict(dedupe(rows).rows)["t"] == "a"


def test_dedupe_leaves_distinct_texts_alone() -> None:
    rows = [("one", "a"), ("two", "a"), ("three", "b")]
    result = dedupe(rows)
    assert result.rows == rows
    assert result.duplicates_dropped == result.conflicting_texts == 0


def _rows(counts: dict[str, int]) -> list[tuple[str, str]]:
    return [(f"{label} {i}", label) for label, n in counts.items() for i in range(n)]


def test_select_top_n_plus_other() -> None:
    rows = _rows({"a": 50, "b": 30, "c": 20, "d": 6, "e": 5})
    assert select_labels(rows, 2, min_examples=5) == ["a", "b", "other"]
    mapped = apply_labels(rows, ["a", "b", "other"])
    assert label_counts(mapped) == {"a": 50, "b": 30, "other": 31}


def test_select_skips_rare_labels_and_small_remainder() -> None:
    rows = _rows({"a": 50, "b": 30, "c": 3})
    labels = select_labels(rows, 5, min_examples=5)
    assert labels == ["a", "b"]  # c is below min_examples and the remainder (3) cannot make an 'other'
    assert label_counts(apply_labels(rows, labels)) == {"a": 50, "b": 30}


def test_stratified_split_keeps_shares_and_is_seeded() -> None:
    rows = _rows({"a": 100, "b": 40, "c": 10, "d": 2})
    split = stratified_split(rows, 0.2, seed=7)
    held = Counter(label for _, label in split.eval)
    assert held == {"a": 20, "b": 8, "c": 2, "d": 1}
    assert len(split.train) + len(split.eval) == len(rows)
    assert not set(split.train) & set(split.eval)
    assert stratified_split(rows, 0.2, seed=7) == split
    assert stratified_split(rows, 0.2, seed=8) != split


def test_stratified_split_rejects_bad_fraction() -> None:
    with pytest.raises(ValueError):
        stratified_split(_rows({"a": 4}), 1.0)


def test_stratified_sample_caps_and_keeps_every_label() -> None:
    rows = _rows({"a": 900, "b": 90, "c": 10})
    sample = stratified_sample(rows, 100, seed=0)
    counts = label_counts(sample)
    assert counts == {"a": 90, "b": 9, "c": 2}
    assert stratified_sample(rows, 5000) == rows


def test_cap_per_label_keeps_rare_labels_whole() -> None:
    from nightclerk.exporters.splits import cap_per_label

    rows = [(f"r{i}", "research") for i in range(100)] + [(f"c{i}", "case") for i in range(7)]
    capped = cap_per_label(rows, 20, seed=1)
    assert sum(label == "research" for _, label in capped) == 20
    assert sum(label == "case" for _, label in capped) == 7
    assert capped == cap_per_label(rows, 20, seed=1)
    assert capped == sorted(capped, key=rows.index)  # original order kept
