"""Train the module a pack exports: a linear probe on the frozen encoder, or a fine-tune of both.

Both produce :class:`~nightclerk.exporters.encoder.PooledClassifier` (``input_ids, attention_mask ->
logits``) on the CPU in eval mode. The validation slice (``val_fraction`` of the training rows, stratified)
picks the fine-tune's epoch and the baseline's ``C``; the eval split is only encoded here, for the gates.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from nightclerk.exporters.checkpoint import Checkpoint
from nightclerk.exporters.encoder import (
    EncoderShape,
    PooledClassifier,
    SentenceEmbedder,
    encoder_shape,
    load_encoder,
)
from nightclerk.exporters.finetune import bf16_supported, finetune
from nightclerk.exporters.finetune_config import FinetuneConfig
from nightclerk.exporters.hardware import describe_torch_device, torch_device
from nightclerk.exporters.onnx_export import export_onnx
from nightclerk.exporters.optimize import fuse_transformer
from nightclerk.exporters.probe import choose_l2, embed, train_linear_head
from nightclerk.exporters.splits import stratified_indices
from nightclerk.exporters.tokens import Encoded, encode, load_tokenizer
from nightclerk.shared.logging import get_logger
from nightclerk.shared.manifest import TOKENIZER_FILE

if TYPE_CHECKING:
    from nightclerk.exporters.build import PreparedData

log = get_logger(__name__)


@dataclass(frozen=True)
class Trained:
    module: nn.Module
    shape: EncoderShape
    train_enc: Encoded
    eval_enc: Encoded
    y_train: np.ndarray
    y_eval: np.ndarray
    val_indices: list[int]  # into the training rows
    device: str  # where the weights were trained
    metrics: dict[str, Any] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


def label_ids(labels: list[str], rows: list[tuple[str, str]]) -> np.ndarray:
    index = {label: i for i, label in enumerate(labels)}
    return np.array([index[label] for _, label in rows], dtype=np.int64)


def preflight_fusion(embedder: SentenceEmbedder, shape: EncoderShape, n_labels: int) -> None:
    """Export and fuse the untrained model once (seconds) so that a checkpoint or library version whose
    graph onnxruntime cannot fuse fails with :class:`FusionError` before minutes of training, not after."""
    module = PooledClassifier(embedder, nn.Linear(shape.hidden_size, n_labels)).eval()
    with tempfile.TemporaryDirectory(prefix="nightclerk-preflight-") as scratch:
        raw = export_onnx(module, Path(scratch) / "raw.onnx")
        fuse_transformer(raw, Path(scratch) / "fused.onnx", num_heads=shape.num_heads,
                         hidden_size=shape.hidden_size, expect_layers=shape.num_layers)  # fmt: skip


def train_module(
    checkpoint: Checkpoint,
    data: PreparedData,
    *,
    method: str,
    max_tokens: int,
    val_fraction: float,
    seed: int,
    finetune_config: FinetuneConfig | None = None,
    batch_size: int = 32,
    progress: bool = True,
    description: str = "train",
) -> Trained:
    labels, train, held = data.labels, data.split.train, data.split.eval
    seconds: dict[str, float] = {}
    mark = time.perf_counter()
    tokenizer = load_tokenizer(checkpoint.path / TOKENIZER_FILE, max_tokens)
    train_enc = encode(tokenizer, [text for text, _ in train], max_tokens)
    eval_enc = encode(tokenizer, [text for text, _ in held], max_tokens)
    y_train, y_eval = label_ids(labels, train), label_ids(labels, held)
    fit, val = stratified_indices([label for _, label in train], val_fraction, seed)
    embedder = SentenceEmbedder(load_encoder(checkpoint.path)).eval()
    shape = encoder_shape(embedder.encoder)
    seconds["load"] = time.perf_counter() - mark
    mark = time.perf_counter()
    preflight_fusion(embedder, shape, len(labels))
    seconds["preflight_fusion"] = time.perf_counter() - mark

    if method == "probe":
        mark = time.perf_counter()
        x = embed(
            embedder, train_enc, batch_size=batch_size, progress=progress, description=f"{description} embed"
        )
        seconds["embed"] = time.perf_counter() - mark
        mark = time.perf_counter()
        choice = choose_l2(x, y_train, len(labels), seed=seed)
        head = train_linear_head(x, y_train, len(labels), l2=choice.l2, seed=seed)
        seconds["fit_head"] = time.perf_counter() - mark
        metrics = {"probe": {"l2": choice.l2, "l2_search_macro_f1": choice.scores, "seed": seed}}
        module = PooledClassifier(embedder, head).eval()
        return Trained(module, shape, train_enc, eval_enc, y_train, y_eval, val, "cpu", metrics, seconds)

    device = torch_device()
    log.info("training_device", device=device, detail=describe_torch_device(device))
    config = finetune_config or FinetuneConfig(seed=seed)
    fit_enc, val_enc = [train_enc[i] for i in fit], [train_enc[i] for i in val]
    mark = time.perf_counter()
    embedder.to(device)
    mixed = bf16_supported(device) if config.mixed_precision is None else config.mixed_precision
    with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=mixed):
        x_fit = embed(
            embedder,
            fit_enc,
            batch_size=batch_size,
            progress=progress,
            description=f"{description} probe init",
            device=device,
        )
    choice = choose_l2(x_fit, y_train[fit], len(labels), seed=seed)
    head = train_linear_head(x_fit, y_train[fit], len(labels), l2=choice.l2, seed=seed)
    seconds["probe_init"] = time.perf_counter() - mark
    module = PooledClassifier(embedder, head)
    result = finetune(
        module,
        module.head,
        fit_enc,
        y_train[fit],
        val_enc,
        y_train[val],
        len(labels),
        config=config,
        device=device,
        progress=progress,
        description=description,
    )
    seconds["finetune"] = result.seconds
    metrics = {
        "finetune": {
            **result.as_metrics(),
            "device_detail": describe_torch_device(device),
            "head_init": {"method": "linear probe on frozen embeddings (LP-FT)", "l2": choice.l2},
        }
    }
    return Trained(module, shape, train_enc, eval_enc, y_train, y_eval, val, device, metrics, seconds)
