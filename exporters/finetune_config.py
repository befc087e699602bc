"""Fine-tune settings, in a module without heavy imports (the CLI builds one before any check runs)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FinetuneConfig:
    epochs: int = 4
    batch_size: int = 16
    lr: float = 1e-4  # encoder
    head_lr: float = 1e-3
    weight_decay: float = 0.01
    warmup_fraction: float = 0.1
    max_grad_norm: float = 1.0
    seed: int = 0
    mixed_precision: bool | None = None  # None: bf16 autocast where the hardware supports it

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError("epochs and batch_size must be at least 1")
        if not (self.lr > 0 and self.head_lr > 0) or not 0 <= self.warmup_fraction < 1:
            raise ValueError("learning rates must be positive and warmup_fraction in [0, 1)")
