"""The baseline every pack is compared with: TF-IDF + logistic regression (scikit-learn).

Trained on the same training rows and scored on the same eval split as the pack, on the same text the
model sees (cut to ``max_tokens`` words). Word uni- and bigrams, sublinear tf, class-balanced weights; the
inverse regularization ``C`` is chosen by macro-F1 on the same validation slice of the training rows the
fine-tune uses to pick its epoch, then the model is refitted on all training rows.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from nightclerk.exporters.metrics import classification_metrics, macro_f1
from nightclerk.shared.text_budget import cut_to_words

C_CANDIDATES = (1.0, 3.0, 10.0, 30.0, 100.0)
METHOD = "tfidf(1-2 grams, sublinear tf, min_df=2) + logistic regression (balanced)"


@dataclass(frozen=True)
class BaselineResult:
    c: float
    val_macro_f1: dict[str, float]
    eval_metrics: dict[str, Any]
    seconds: float

    def as_metrics(self) -> dict[str, Any]:
        return {
            "method": METHOD,
            "C": self.c,
            "val_macro_f1_by_C": self.val_macro_f1,
            "eval": self.eval_metrics,
            "seconds": round(self.seconds, 2),
        }


def _require_sklearn() -> None:
    try:
        import sklearn  # noqa: F401
    except ImportError:
        raise ImportError("the baseline needs scikit-learn: pip install 'nightclerk[export]'") from None


def _fit(texts: Sequence[str], y: np.ndarray, c: float, seed: int) -> Any:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    pipeline = make_pipeline(
        TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2, max_features=200_000),
        LogisticRegression(C=c, class_weight="balanced", max_iter=3000, random_state=seed),
    )
    return pipeline.fit(list(texts), y)


def tfidf_baseline(
    train_texts: Sequence[str],
    y_train: np.ndarray,
    eval_texts: Sequence[str],
    y_eval: np.ndarray,
    labels: Sequence[str],
    *,
    max_words: int,
    val_indices: Sequence[int],
    candidates: Sequence[float] = C_CANDIDATES,
    seed: int = 0,
) -> BaselineResult:
    """Fit on ``train_texts`` (choosing C on ``val_indices`` of them), score on the eval split."""
    _require_sklearn()
    started = time.perf_counter()
    train = [cut_to_words(text, max_words) for text in train_texts]
    held = set(val_indices)
    fit_idx = [i for i in range(len(train)) if i not in held]
    val_idx = sorted(held)
    scores: dict[str, float] = {}
    best = (-1.0, candidates[0])
    for c in candidates:
        model = _fit([train[i] for i in fit_idx], y_train[fit_idx], c, seed)
        score = macro_f1(y_train[val_idx], model.predict([train[i] for i in val_idx]), len(labels))
        scores[f"{c:g}"] = round(score, 4)
        best = max(best, (score, c), key=lambda pair: (pair[0], -pair[1]))  # ties: stronger regularization
    model = _fit(train, y_train, best[1], seed)
    predicted = model.predict([cut_to_words(text, max_words) for text in eval_texts])
    metrics = classification_metrics(y_eval, np.asarray(predicted), labels)
    return BaselineResult(best[1], scores, metrics, time.perf_counter() - started)
