"""torch module -> ONNX with the TorchScript exporter (``dynamo=False``), dynamic batch and sequence axes.

The TorchScript exporter is used on purpose: its graph of an eager-attention BERT is what onnxruntime's
transformer optimizer recognizes (the dynamo exporter's graph does not fuse).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import onnx
import torch
from torch import nn

from nightclerk.exporters.errors import ExportError

OPSET = 17
INPUT_NAMES = ("input_ids", "attention_mask")
OUTPUT_NAME = "logits"


def sample_inputs(sequence: int = 16, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Two rows of token ids, the second padded: tracing sees a real mask."""
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(1000, 2000, (2, sequence), generator=generator, dtype=torch.int64)
    ids[:, 0] = 101  # [CLS]
    mask = torch.ones_like(ids)
    mask[1, sequence // 2 :] = 0
    ids[1, sequence // 2 :] = 0
    return ids, mask


def export_onnx(module: nn.Module, path: Path, *, opset: int = OPSET) -> Path:
    """Export ``module(input_ids, attention_mask) -> logits`` to ``path`` and check the result."""
    module.eval()
    axes = {name: {0: "batch", 1: "sequence"} for name in INPUT_NAMES}
    axes[OUTPUT_NAME] = {0: "batch"}
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
            warnings.simplefilter("ignore")  # tracer warnings about shape-dependent Python branches
            torch.onnx.export(
                module,
                sample_inputs(),
                str(path),
                dynamo=False,
                opset_version=opset,
                input_names=list(INPUT_NAMES),
                output_names=[OUTPUT_NAME],
                dynamic_axes=axes,
                do_constant_folding=True,
            )
        onnx.checker.check_model(str(path))
    except Exception as exc:  # torch and onnx raise many types; name the step and keep the cause
        raise ExportError(f"ONNX export to {path.name} failed: {type(exc).__name__}: {exc}") from exc
    return path
