"""Fine-tune mechanics on a tiny random BERT and synthetic rows (seconds, CPU)."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from nightclerk.exporters.encoder import PooledClassifier, SentenceEmbedder
from nightclerk.exporters.finetune import finetune, predict_logits
from nightclerk.exporters.finetune_config import FinetuneConfig
from nightclerk.exporters.tiny import minilm_dir, tiny_classifier
from nightclerk.exporters.tokens import Encoded, encode, load_tokenizer

VOCAB = {
    "engine": "engine oil coolant radiator filter",
    "bucket": "bucket tooth pin bushing weld",
    "hydraulic": "hose leak pump valve seal",
}
SHARED = ["replaced", "checked", "broken", "cracked", "found", "worn"]


def synthetic_rows(n: int, seed: int = 0) -> list[tuple[str, int]]:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = i % 3
        words = [rng.choice(list(VOCAB.values())[label].split()) for _ in range(rng.randint(2, 5))]
        words += [rng.choice(SHARED) for _ in range(rng.randint(1, 4))]
        rng.shuffle(words)
        rows.append((" ".join(words), label))
    return rows


@pytest.fixture(scope="module")
def data() -> tuple[Encoded, np.ndarray, Encoded, np.ndarray]:
    tokenizer = load_tokenizer(minilm_dir() / "tokenizer.json", 16)
    train, val = synthetic_rows(48, seed=0), synthetic_rows(18, seed=1)
    return (
        encode(tokenizer, [t for t, _ in train], 16),
        np.array([y for _, y in train]),
        encode(tokenizer, [t for t, _ in val], 16),
        np.array([y for _, y in val]),
    )


def _module(seed: int = 0) -> PooledClassifier:
    torch.manual_seed(seed)
    encoder = tiny_classifier(3, seed=seed).model.bert
    encoder.config.initializer_range = 0.02
    return PooledClassifier(SentenceEmbedder(encoder), torch.nn.Linear(32, 3))


CONFIG = FinetuneConfig(epochs=3, batch_size=8, lr=1e-3, head_lr=3e-2, seed=0, mixed_precision=False)


def test_loss_decreases_and_best_epoch_is_loaded(
    data: tuple[Encoded, np.ndarray, Encoded, np.ndarray],
) -> None:
    train, y_train, val, y_val = data
    module = _module()
    snapshots: dict[int, np.ndarray] = {}

    def keep(epoch: int, trained: torch.nn.Module) -> None:
        snapshots[epoch] = predict_logits(trained, val, "cpu")

    result = finetune(module, module.head, train, y_train, val, y_val, 3, config=CONFIG, progress=False,
                      on_epoch=keep)  # fmt: skip
    losses = [record.train_loss for record in result.history]
    assert len(losses) == 3 and losses[-1] < losses[0]
    assert result.device == "cpu" and not result.mixed_precision and result.steps == 18
    best = max(result.history, key=lambda r: r.val_macro_f1)
    assert result.best_epoch == min(r.epoch for r in result.history if r.val_macro_f1 == best.val_macro_f1)
    assert not module.training  # left in eval mode, on the CPU, with the chosen epoch's weights
    assert np.allclose(predict_logits(module, val, "cpu"), snapshots[result.best_epoch], atol=1e-5)
    metrics = result.as_metrics()
    assert metrics["best_epoch"] == result.best_epoch and len(metrics["history"]) == 3


def test_same_seed_same_weights(data: tuple[Encoded, np.ndarray, Encoded, np.ndarray]) -> None:
    train, y_train, val, y_val = data
    runs = []
    for _ in range(2):
        module = _module()
        result = finetune(module, module.head, train, y_train, val, y_val, 3, config=CONFIG, progress=False)
        runs.append((module.state_dict(), [r.train_loss for r in result.history]))
    (first, losses_a), (second, losses_b) = runs
    assert losses_a == losses_b
    assert all(torch.equal(first[key], second[key]) for key in first)


def test_bad_config_and_inputs() -> None:
    with pytest.raises(ValueError):
        FinetuneConfig(epochs=0)
    with pytest.raises(ValueError):
        FinetuneConfig(lr=0.0)
    module = _module()
    with pytest.raises(ValueError, match="equal"):
        finetune(module, module.head, [[101, 102]], np.array([0, 1]), [[101, 102]], np.array([0]), 2)
