"""Export, fusion and quantization mechanics on the tiny model (seconds)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from nightclerk.exporters.errors import ExportError, FusionError
from nightclerk.exporters.onnx_export import export_onnx, sample_inputs
from nightclerk.exporters.optimize import ffn_projections, fuse_transformer, op_counts, quantize_int8
from nightclerk.exporters.tiny import TINY_SHAPE, tiny_classifier


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[torch.nn.Module, Path]:
    module = tiny_classifier(3, seed=1)
    path = export_onnx(module, tmp_path_factory.mktemp("onnx") / "raw.onnx")
    return module, path


def _run(path: Path, ids: torch.Tensor, mask: torch.Tensor) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (logits,) = session.run(["logits"], {"input_ids": ids.numpy(), "attention_mask": mask.numpy()})
    return np.asarray(logits)


def test_export_has_dynamic_axes_and_matches_torch(exported: tuple[torch.nn.Module, Path]) -> None:
    module, path = exported
    graph = onnx.load(str(path)).graph
    dims = {i.name: [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim] for i in graph.input}
    assert dims == {"input_ids": ["batch", "sequence"], "attention_mask": ["batch", "sequence"]}
    ids, mask = sample_inputs(sequence=40, seed=5)
    ids = torch.cat([ids, ids, ids])
    mask = torch.cat([mask, mask, mask])
    with torch.no_grad():
        reference = module(ids, mask).numpy()
    assert np.abs(_run(path, ids, mask) - reference).max() < 1e-4


def test_fusion_replaces_attention_and_layer_norms(
    exported: tuple[torch.nn.Module, Path], tmp_path: Path
) -> None:
    module, raw = exported
    report = fuse_transformer(
        raw,
        tmp_path / "fused.onnx",
        num_heads=TINY_SHAPE.num_heads,
        hidden_size=TINY_SHAPE.hidden_size,
        expect_layers=TINY_SHAPE.num_layers,
    )
    assert report.attention == 2 and report.skip_layer_norm == 4
    counts = op_counts(tmp_path / "fused.onnx")
    assert counts["Attention"] == 2 and counts["Softmax"] == 0
    ids, mask = sample_inputs(sequence=24)
    with torch.no_grad():
        reference = module(ids, mask).numpy()
    assert np.abs(_run(tmp_path / "fused.onnx", ids, mask) - reference).max() < 1e-4


def test_fusion_error_when_fewer_layers_fused_than_expected(
    exported: tuple[torch.nn.Module, Path], tmp_path: Path
) -> None:
    _, raw = exported
    with pytest.raises(FusionError, match="expected 3"):
        fuse_transformer(raw, tmp_path / "f.onnx", num_heads=2, hidden_size=32, expect_layers=3)


def test_quantize_fused_model_to_int8(exported: tuple[torch.nn.Module, Path], tmp_path: Path) -> None:
    _, raw = exported
    fuse_transformer(raw, tmp_path / "fused.onnx", num_heads=2, hidden_size=32)
    quantize_int8(tmp_path / "fused.onnx", tmp_path / "int8.onnx")
    counts = op_counts(tmp_path / "int8.onnx")
    assert counts["DynamicQuantizeLinear"] > 0
    assert counts["MatMulInteger"] + counts["QAttention"] > 0
    assert (tmp_path / "int8.onnx").stat().st_size < (tmp_path / "fused.onnx").stat().st_size
    ids, mask = sample_inputs()
    fp32 = _run(tmp_path / "fused.onnx", ids, mask)
    int8 = _run(tmp_path / "int8.onnx", ids, mask)
    assert int8.shape == fp32.shape and np.abs(int8 - fp32).max() < 0.5


def test_bad_inputs_raise_export_error(tmp_path: Path) -> None:
    (tmp_path / "junk.onnx").write_bytes(b"not onnx")
    with pytest.raises(ExportError):
        quantize_int8(tmp_path / "junk.onnx", tmp_path / "out.onnx")


def test_ffn_projections_are_found_structurally(
    exported: tuple[torch.nn.Module, Path], tmp_path: Path
) -> None:
    _, raw = exported
    fuse_transformer(raw, tmp_path / "fused.onnx", num_heads=2, hidden_size=32)
    down = ffn_projections(tmp_path / "fused.onnx", up=False)
    up = ffn_projections(tmp_path / "fused.onnx", down=False)
    assert len(down) == len(up) == TINY_SHAPE.num_layers
    assert all("output/dense" in name for name in down) and all("intermediate" in name for name in up)
    assert sorted(ffn_projections(tmp_path / "fused.onnx")) == sorted(down + up)
    quantize_int8(tmp_path / "fused.onnx", tmp_path / "mixed.onnx", exclude=down + up)
    assert op_counts(tmp_path / "mixed.onnx")["MatMul"] >= 2 * TINY_SHAPE.num_layers
