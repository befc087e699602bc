from __future__ import annotations

import numpy as np
import pytest

from nightclerk.exporters.metrics import classification_metrics, confusion_matrix, label_agreement, macro_f1


def test_hand_computed_example() -> None:
    # true:  a a a b b c ; pred: a a b b c c
    y_true = np.array([0, 0, 0, 1, 1, 2])
    y_pred = np.array([0, 0, 1, 1, 2, 2])
    result = classification_metrics(y_true, y_pred, ["a", "b", "c"])
    assert result["n"] == 6
    assert result["accuracy"] == pytest.approx(4 / 6, abs=1e-4)
    a, b, c = (result["per_class"][k] for k in "abc")
    assert (a["precision"], a["recall"], a["f1"], a["support"]) == (
        1.0,
        pytest.approx(0.6667, abs=1e-4),
        pytest.approx(0.8, abs=1e-4),
        3,
    )
    assert (b["precision"], b["recall"], b["f1"]) == (0.5, 0.5, 0.5)
    assert (c["precision"], c["recall"], c["f1"]) == (0.5, 1.0, pytest.approx(0.6667, abs=1e-4))
    assert result["macro_f1"] == pytest.approx((0.8 + 0.5 + 2 / 3) / 3, abs=1e-4)
    assert macro_f1(y_true, y_pred, 3) == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)


def test_absent_labels_do_not_count_in_macro_f1_and_zero_division_is_zero() -> None:
    y_true = np.array([0, 0, 1])
    y_pred = np.array([0, 0, 0])
    result = classification_metrics(y_true, y_pred, ["a", "b", "never"])
    assert result["per_class"]["b"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert result["per_class"]["never"]["support"] == 0
    assert result["macro_f1"] == pytest.approx((0.8 + 0.0) / 2, abs=1e-4)


def test_confusion_matrix() -> None:
    matrix = confusion_matrix(np.array([0, 1, 1]), np.array([1, 1, 0]), 2)
    assert matrix.tolist() == [[0, 1], [1, 1]]


def test_label_agreement() -> None:
    a = np.array([[1.0, 0.0], [0.0, 1.0], [2.0, 1.0]])
    b = np.array([[0.9, 0.1], [1.0, 0.0], [3.0, 1.0]])
    assert label_agreement(a, b) == pytest.approx(2 / 3)
    with pytest.raises(ValueError):
        label_agreement(a, b[:2])


def test_shape_mismatch_is_an_error() -> None:
    with pytest.raises(ValueError):
        classification_metrics(np.array([0, 1]), np.array([0]), ["a", "b"])
