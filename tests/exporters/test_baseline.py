from __future__ import annotations

import numpy as np

from nightclerk.exporters.baseline import tfidf_baseline
from nightclerk.exporters.splits import stratified_indices

WORDS = {0: "oil coolant radiator engine", 1: "bucket tooth pin weld", 2: "hose leak pump valve"}


def _rows(n: int, offset: int) -> tuple[list[str], np.ndarray]:
    texts = [f"{WORDS[i % 3]} unit {i + offset} checked and replaced" for i in range(n)]
    return texts, np.array([i % 3 for i in range(n)])


def test_baseline_learns_keywords_and_records_its_choice() -> None:
    train, y_train = _rows(60, 0)
    held, y_eval = _rows(15, 1000)
    _, val = stratified_indices([str(y) for y in y_train], 0.2, 0)
    result = tfidf_baseline(train, y_train, held, y_eval, ["engine", "bucket", "hydraulic"], max_words=6,
                            val_indices=val, candidates=(1.0, 10.0))  # fmt: skip
    assert result.c in (1.0, 10.0)
    assert set(result.val_macro_f1) == {"1", "10"}
    assert result.eval_metrics["macro_f1"] == 1.0 and result.eval_metrics["n"] == 15
    figures = result.as_metrics()
    assert "tfidf" in figures["method"] and figures["eval"]["per_class"]["bucket"]["support"] == 5


def test_baseline_sees_only_the_first_words() -> None:
    # the label word comes after the word budget: the baseline cannot see it, as the model would not
    train = [f"note {i} says {WORDS[i % 3]}" for i in range(60)]
    y_train = np.array([i % 3 for i in range(60)])
    _, val = stratified_indices([str(y) for y in y_train], 0.2, 0)
    result = tfidf_baseline(train, y_train, train[:15], y_train[:15], ["a", "b", "c"], max_words=2,
                            val_indices=val, candidates=(1.0,))  # fmt: skip
    assert result.eval_metrics["macro_f1"] < 0.6
