"""The fast build method: a frozen sentence encoder and a linear head (multinomial logistic regression).

Texts are embedded once (mean pooling + L2 normalization); the head is then fitted full-batch with L-BFGS
in float64 on class-balanced cross-entropy plus an L2 penalty on the weights. The penalty is chosen from a
few candidates by macro-F1 on a stratified slice of the training rows, then the head is refitted on all of
them. Everything is deterministic for a given seed (zero initialization, no sampling in the fit).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from nightclerk.exporters.encoder import SentenceEmbedder
from nightclerk.exporters.metrics import macro_f1
from nightclerk.exporters.progress import progress_bar
from nightclerk.exporters.splits import stratified_indices
from nightclerk.exporters.tokens import Encoded, padded_batches

L2_CANDIDATES = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2)


@dataclass(frozen=True)
class HeadChoice:
    l2: float
    scores: dict[str, float]  # candidate l2 -> macro-F1 on the inner held-out slice


def embed(
    embedder: SentenceEmbedder,
    encoded: Encoded,
    *,
    batch_size: int = 32,
    progress: bool = True,
    description: str = "embedding",
    device: str = "cpu",
) -> np.ndarray:
    """``(len(encoded), hidden)`` float32 sentence embeddings, batched longest first."""
    rows: dict[int, np.ndarray] = {}
    with torch.inference_mode(), progress_bar(progress) as bar:
        task = bar.add_task(description, total=len(encoded))
        for indices, ids, mask in padded_batches(encoded, batch_size):
            vectors = embedder(torch.from_numpy(ids).to(device), torch.from_numpy(mask).to(device))
            vectors = vectors.float().cpu().numpy()
            rows.update(zip(indices, vectors, strict=True))
            bar.advance(task, len(indices))
    if not rows:
        raise ValueError("nothing to embed")
    return np.stack([rows[i] for i in range(len(encoded))]).astype(np.float32)


def balanced_weights(y: np.ndarray, n_classes: int) -> np.ndarray:
    """``n / (n_classes_present * count)`` per class (0 for absent classes), as scikit-learn's 'balanced'."""
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    present = counts > 0
    weights = np.zeros(n_classes)
    weights[present] = len(y) / (present.sum() * counts[present])
    return weights


def train_linear_head(
    x: np.ndarray, y: np.ndarray, n_classes: int, *, l2: float, seed: int = 0, max_iter: int = 300
) -> nn.Linear:
    """Multinomial logistic regression fitted with full-batch L-BFGS; returns a float32 ``nn.Linear``."""
    torch.manual_seed(seed)
    features = torch.from_numpy(np.asarray(x, dtype=np.float64))
    targets = torch.from_numpy(np.asarray(y, dtype=np.int64))
    class_weight = torch.from_numpy(balanced_weights(np.asarray(y), n_classes))
    weight = torch.zeros(n_classes, features.shape[1], dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(n_classes, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS(
        [weight, bias],
        lr=1.0,
        max_iter=max_iter,
        history_size=20,
        tolerance_grad=1e-8,
        tolerance_change=1e-12,
        line_search_fn="strong_wolfe",
    )

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        logits = features @ weight.T + bias
        loss = nn.functional.cross_entropy(logits, targets, weight=class_weight) + l2 * weight.pow(2).sum()
        loss.backward()  # type: ignore[no-untyped-call]
        return loss

    optimizer.step(closure)  # type: ignore[no-untyped-call]
    head = nn.Linear(features.shape[1], n_classes)
    with torch.no_grad():
        head.weight.copy_(weight.detach().float())
        head.bias.copy_(bias.detach().float())
    return head.eval()


def predict(head: nn.Linear, x: np.ndarray) -> np.ndarray:
    with torch.inference_mode():
        logits: np.ndarray = head(torch.from_numpy(np.asarray(x, dtype=np.float32))).numpy()
    return logits


def choose_l2(
    x: np.ndarray,
    y: np.ndarray,
    n_classes: int,
    *,
    candidates: Sequence[float] = L2_CANDIDATES,
    seed: int = 0,
    held_fraction: float = 0.25,
) -> HeadChoice:
    """The L2 penalty with the best macro-F1 on a stratified slice of the training rows (ties: stronger)."""
    inner_train, inner_held = stratified_indices([str(label) for label in y], held_fraction, seed)
    scores: dict[str, float] = {}
    best = (-1.0, 0.0)
    for l2 in candidates:
        head = train_linear_head(x[inner_train], y[inner_train], n_classes, l2=l2, seed=seed)
        score = macro_f1(y[inner_held], predict(head, x[inner_held]).argmax(axis=1), n_classes)
        scores[f"{l2:g}"] = round(score, 4)
        best = max(best, (score, l2))
    return HeadChoice(best[1], scores)
