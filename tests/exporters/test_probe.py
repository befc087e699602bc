from __future__ import annotations

import numpy as np
import pytest
import torch

from nightclerk.exporters.encoder import MeanPoolNormalize, SentenceEmbedder
from nightclerk.exporters.probe import balanced_weights, choose_l2, embed, predict, train_linear_head
from nightclerk.exporters.tiny import tiny_classifier


def _blobs(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centers = np.eye(3, 8) * 3
    y = np.repeat([0, 1, 2], [60, 30, 10])
    x = centers[y] + rng.normal(scale=0.5, size=(len(y), 8))
    return x.astype(np.float32), y


def test_linear_head_separates_blobs_deterministically() -> None:
    x, y = _blobs()
    head = train_linear_head(x, y, 3, l2=1e-3, seed=0)
    assert (predict(head, x).argmax(axis=1) == y).mean() == 1.0
    again = train_linear_head(x, y, 3, l2=1e-3, seed=0)
    assert torch.equal(head.weight, again.weight)


def test_stronger_l2_gives_smaller_weights() -> None:
    x, y = _blobs()
    weak = train_linear_head(x, y, 3, l2=1e-4)
    strong = train_linear_head(x, y, 3, l2=1e-1)
    assert strong.weight.norm() < weak.weight.norm()


def test_balanced_weights() -> None:
    y = np.array([0, 0, 0, 1])
    assert balanced_weights(y, 3).tolist() == pytest.approx([4 / 6, 2.0, 0.0])


def test_choose_l2_picks_a_candidate() -> None:
    x, y = _blobs()
    choice = choose_l2(x, y, 3, candidates=(1e-4, 1e-2), seed=0)
    assert choice.l2 in (1e-4, 1e-2)
    assert set(choice.scores) == {"0.0001", "0.01"}


def test_mean_pool_ignores_padding_and_normalizes() -> None:
    hidden = torch.tensor([[[1.0, 0.0], [3.0, 0.0], [100.0, 100.0]]])
    mask = torch.tensor([[1, 1, 0]])
    pooled = MeanPoolNormalize()(hidden, mask)
    assert torch.allclose(pooled, torch.tensor([[1.0, 0.0]]))


def test_embed_is_independent_of_batching() -> None:
    encoder = tiny_classifier(2, seed=0).model.bert
    embedder = SentenceEmbedder(encoder).eval()
    encoded = [[101, *range(2000, 2000 + n), 102] for n in (1, 5, 9, 3, 30)]
    one = embed(embedder, encoded, batch_size=1, progress=False)
    many = embed(embedder, encoded, batch_size=4, progress=False)
    assert one.shape == (5, 32)
    assert np.allclose(np.linalg.norm(one, axis=1), 1.0, atol=1e-5)
    assert np.abs(one - many).max() < 1e-5
