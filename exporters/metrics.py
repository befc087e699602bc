"""Classification metrics on integer label ids, numpy only.

Macro-F1 averages over the labels that occur in the true or the predicted ids (as scikit-learn does when
not told the labels); a precision or recall whose denominator is zero counts as 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_labels: int) -> np.ndarray:
    """``matrix[t, p]`` = documents of true label ``t`` predicted as ``p``."""
    matrix = np.zeros((n_labels, n_labels), dtype=np.int64)
    np.add.at(matrix, (np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)), 1)
    return matrix


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    out = np.zeros_like(numerator, dtype=np.float64)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def _scores(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    hits = np.diag(matrix).astype(np.float64)
    support = matrix.sum(axis=1).astype(np.float64)
    predicted = matrix.sum(axis=0).astype(np.float64)
    precision = _ratio(hits, predicted)
    recall = _ratio(hits, support)
    f1 = _ratio(2 * precision * recall, precision + recall)
    present = (support + predicted) > 0
    return precision, recall, f1, support, present


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray, n_labels: int) -> float:
    """Unrounded macro-F1 (for model selection)."""
    *_, f1, _support, present = _scores(confusion_matrix(y_true, y_pred, n_labels))
    return float(f1[present].mean()) if present.any() else 0.0


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray, labels: Sequence[str]) -> dict[str, Any]:
    """Accuracy, macro-F1 and per-label precision/recall/F1/support, rounded for a manifest."""
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true {y_true.shape} and y_pred {y_pred.shape} differ in shape")
    matrix = confusion_matrix(y_true, y_pred, len(labels))
    precision, recall, f1, support, present = _scores(matrix)
    n = int(y_true.size)
    return {
        "n": n,
        "accuracy": round(float(np.trace(matrix) / n), 4) if n else 0.0,
        "macro_f1": round(float(f1[present].mean()), 4) if present.any() else 0.0,
        "per_class": {
            label: {
                "precision": round(float(precision[i]), 4),
                "recall": round(float(recall[i]), 4),
                "f1": round(float(f1[i]), 4),
                "support": int(support[i]),
            }
            for i, label in enumerate(labels)
        },
    }


def label_agreement(a: np.ndarray, b: np.ndarray) -> float:
    """Share of rows whose argmax is the same in two logit (or probability) arrays."""
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    if a.shape[0] == 0:
        return 1.0
    return float(np.mean(a.argmax(axis=1) == b.argmax(axis=1)))
