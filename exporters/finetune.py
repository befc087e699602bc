"""Fine-tune the whole encoder and a linear head on labelled texts, choosing the epoch on a validation slice.

The module is the one the linear probe exports (:class:`~nightclerk.exporters.encoder.PooledClassifier`:
encoder -> masked mean pooling -> L2 normalization -> linear head), so the ONNX contract stays
``(input_ids, attention_mask) -> logits``. Recipe:

- the head starts from the linear probe fitted on the frozen embeddings (LP-FT): with L2-normalized
  features a randomly initialised head would spend the first epochs only growing its weights, and a good
  head keeps the first updates from distorting the pretrained features;
- AdamW, the head at a higher learning rate than the encoder, no weight decay on biases and LayerNorms,
  linear warmup then linear decay to 0, gradient norm clipped at 1;
- class-balanced cross-entropy (``n / (k * count)`` per class);
- bf16 autocast where the hardware has it (CUDA, or a CPU with AVX512-BF16/AMX): master weights and the
  loss stay float32, the exported model is float32;
- after each epoch the model is scored on a stratified validation slice of the *training* rows; the epoch
  with the best macro-F1 is kept (the held-out eval split is never looked at);
- deterministic for a seed on a given machine: seeded torch generator, seeded batch order.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from rich.progress import TextColumn
from torch import nn

from nightclerk.exporters.finetune_config import FinetuneConfig
from nightclerk.exporters.metrics import macro_f1
from nightclerk.exporters.probe import balanced_weights
from nightclerk.exporters.progress import progress_bar
from nightclerk.exporters.tokens import Encoded, pad, padded_batches
from nightclerk.shared.logging import get_logger

log = get_logger(__name__)


@dataclass(frozen=True)
class EpochRecord:
    epoch: int
    train_loss: float
    val_macro_f1: float
    val_accuracy: float
    seconds: float


@dataclass(frozen=True)
class FinetuneResult:
    best_epoch: int  # 1-based
    history: list[EpochRecord]
    device: str
    mixed_precision: bool
    steps: int
    initial_val_macro_f1: float  # the LP-FT starting point (epoch 0), for reference
    seconds: float
    config: dict[str, Any] = field(default_factory=dict)

    def as_metrics(self) -> dict[str, Any]:
        return {
            "best_epoch": self.best_epoch,
            "device": self.device,
            "bf16_autocast": self.mixed_precision,
            "steps": self.steps,
            "val_macro_f1_epoch0": round(self.initial_val_macro_f1, 4),
            "history": [
                {
                    "epoch": r.epoch,
                    "train_loss": round(r.train_loss, 4),
                    "val_macro_f1": round(r.val_macro_f1, 4),
                    "val_accuracy": round(r.val_accuracy, 4),
                    "seconds": round(r.seconds, 1),
                }
                for r in self.history
            ],
            "config": self.config,
            "seconds": round(self.seconds, 1),
        }


def bf16_supported(device: str) -> bool:
    if device == "cuda":
        return bool(torch.cuda.is_bf16_supported())
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def _param_groups(module: nn.Module, head: nn.Module, config: FinetuneConfig) -> list[dict[str, Any]]:
    head_ids = {id(p) for p in head.parameters()}
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    for name, param in module.named_parameters():
        if not param.requires_grad or id(param) in head_ids:
            continue
        (no_decay if param.ndim < 2 or "LayerNorm" in name or "norm" in name.lower() else decay).append(param)
    return [
        {"params": decay, "lr": config.lr, "weight_decay": config.weight_decay},
        {"params": no_decay, "lr": config.lr, "weight_decay": 0.0},
        {"params": list(head.parameters()), "lr": config.head_lr, "weight_decay": 0.0},
    ]


def _schedule(optimizer: torch.optim.Optimizer, steps: int, warmup: int) -> torch.optim.lr_scheduler.LambdaLR:
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (steps - step) / max(1, steps - warmup))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def predict_logits(module: nn.Module, encoded: Encoded, device: str, batch_size: int = 64) -> np.ndarray:
    """float32 logits in input order (eval mode, no autocast: what the fp32 export computes)."""
    module.eval()
    out: dict[int, np.ndarray] = {}
    with torch.inference_mode():
        for indices, ids, mask in padded_batches(encoded, batch_size):
            logits = module(torch.from_numpy(ids).to(device), torch.from_numpy(mask).to(device))
            out.update(zip(indices, logits.float().cpu().numpy(), strict=True))
    return np.stack([out[i] for i in range(len(encoded))])


def finetune(
    module: nn.Module,
    head: nn.Module,
    train: Encoded,
    y_train: np.ndarray,
    val: Encoded,
    y_val: np.ndarray,
    n_labels: int,
    *,
    config: FinetuneConfig = FinetuneConfig(),
    device: str = "cpu",
    progress: bool = True,
    description: str = "fine-tune",
    on_epoch: Callable[[int, nn.Module], None] | None = None,
) -> FinetuneResult:
    """Train ``module`` (whose ``head`` is one of its submodules) in place; leave the best epoch loaded,
    on the CPU, in eval mode. ``on_epoch(epoch, module)`` is called after each epoch's validation."""
    if len(train) != len(y_train) or len(val) != len(y_val) or not train or not val:
        raise ValueError("train and val need texts and labels of equal, non-zero length")
    started = time.perf_counter()
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    mixed = bf16_supported(device) if config.mixed_precision is None else config.mixed_precision
    module.to(device)
    optimizer = torch.optim.AdamW(_param_groups(module, head, config), lr=config.lr)
    per_epoch = math.ceil(len(train) / config.batch_size)
    steps = per_epoch * config.epochs
    scheduler = _schedule(optimizer, steps, max(1, round(steps * config.warmup_fraction)))
    class_weight = torch.tensor(balanced_weights(y_train, n_labels), dtype=torch.float32, device=device)
    targets = torch.from_numpy(np.asarray(y_train, dtype=np.int64))

    initial = macro_f1(y_val, predict_logits(module, val, device).argmax(axis=1), n_labels)
    best = (initial, 0)
    best_state: dict[str, torch.Tensor] | None = None
    history: list[EpochRecord] = []
    log.info(
        "finetune_started",
        device=device,
        bf16_autocast=mixed,
        train=len(train),
        val=len(val),
        epochs=config.epochs,
        steps=steps,
        val_macro_f1_epoch0=round(initial, 4),
    )
    for epoch in range(1, config.epochs + 1):
        mark = time.perf_counter()
        module.train()
        order = rng.permutation(len(train))
        total, seen = 0.0, 0
        with progress_bar(progress, TextColumn("loss {task.fields[loss]}")) as bar:
            task = bar.add_task(f"{description} epoch {epoch}/{config.epochs}", total=len(train), loss="-")
            for start in range(0, len(order), config.batch_size):
                batch = order[start : start + config.batch_size]
                ids, mask = pad([train[i] for i in batch])
                with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=mixed):
                    logits = module(torch.from_numpy(ids).to(device), torch.from_numpy(mask).to(device))
                loss = nn.functional.cross_entropy(
                    logits.float(), targets[batch].to(device), weight=class_weight
                )
                optimizer.zero_grad(set_to_none=True)
                loss.backward()  # type: ignore[no-untyped-call]
                nn.utils.clip_grad_norm_(module.parameters(), config.max_grad_norm)
                optimizer.step()
                scheduler.step()
                total += float(loss.detach()) * len(batch)
                seen += len(batch)
                bar.update(task, advance=len(batch), loss=f"{total / seen:.3f}")
        val_logits = predict_logits(module, val, device)
        score = macro_f1(y_val, val_logits.argmax(axis=1), n_labels)
        accuracy = float(np.mean(val_logits.argmax(axis=1) == y_val))
        record = EpochRecord(epoch, total / seen, score, accuracy, time.perf_counter() - mark)
        history.append(record)
        log.info(
            "finetune_epoch",
            epoch=epoch,
            train_loss=round(record.train_loss, 4),
            val_macro_f1=round(score, 4),
            val_accuracy=round(accuracy, 4),
            seconds=round(record.seconds, 1),
        )
        if on_epoch is not None:
            on_epoch(epoch, module)
        if best_state is None or score > best[0]:
            best = (score, epoch)
            best_state = {k: v.detach().to("cpu", copy=True) for k, v in module.state_dict().items()}
    assert best_state is not None  # at least one epoch ran
    module.to("cpu")
    module.load_state_dict(best_state)
    module.eval()
    return FinetuneResult(
        best_epoch=best[1],
        history=history,
        device=device,
        mixed_precision=mixed,
        steps=steps,
        initial_val_macro_f1=initial,
        seconds=time.perf_counter() - started,
        config=asdict(config),
    )
