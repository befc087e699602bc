from __future__ import annotations

import pytest

from nightclerk.exporters.generation.rouge import lead_sentence, rouge


def test_identical_summaries_score_one_and_disjoint_ones_zero() -> None:
    same = rouge(["left knee arthroscopy"], ["left knee arthroscopy"])
    assert same.rouge1 == pytest.approx(1.0) and same.rouge_l == pytest.approx(1.0)
    other = rouge(["cardiac catheterization"], ["left knee arthroscopy"])
    assert other.rouge1 == 0.0 and other.rouge_l == 0.0


def test_scores_are_means_over_documents_and_stemmed() -> None:
    scores = rouge(["knees scoped", ""], ["knee scope", "anything"])
    assert scores.documents == 2
    assert scores.rouge1 == pytest.approx(0.5)  # stems match on the first, the empty one scores 0
    assert scores.as_metrics("x_") == {"x_rouge1": 0.5, "x_rougeL": 0.5}


def test_rouge_l_rewards_order() -> None:
    in_order = rouge(["a b c d"], ["a b c d"]).rouge_l
    reversed_ = rouge(["d c b a"], ["a b c d"]).rouge_l
    assert reversed_ < in_order


def test_mismatched_or_empty_inputs_are_errors() -> None:
    with pytest.raises(ValueError, match="2 predictions for 1"):
        rouge(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="no predictions"):
        rouge([], [])


def test_lead_sentence_undoes_the_section_comma() -> None:
    text = (
        "HISTORY OF PRESENT ILLNESS:, The patient is a 45-year-old man with knee pain. "
        "He fell on Dr. Smith's stairs."
    )
    assert (
        lead_sentence(text) == "HISTORY OF PRESENT ILLNESS: The patient is a 45-year-old man with knee pain."
    )
    assert lead_sentence("   ") == ""
