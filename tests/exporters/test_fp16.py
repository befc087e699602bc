"""fp16 conversion and its gate, on a tiny fused model; CUDA only where a GPU is present."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
import torch

import nightclerk.exporters.fp16 as fp16
from nightclerk.exporters.encoder import minilm_dir
from nightclerk.exporters.errors import AtolError
from nightclerk.exporters.hardware import CPU_PROVIDERS, cuda_providers
from nightclerk.exporters.optimize import op_counts
from nightclerk.exporters.parity import torch_logits
from nightclerk.exporters.tiny import TINY_SHAPE, sample_texts, tiny_classifier
from nightclerk.exporters.tokens import Encoded, encode, load_tokenizer
from nightclerk.exporters.variants import build_variants

Built = tuple[np.ndarray, Path, Encoded]


@pytest.fixture(scope="module")
def built(tiny_variants: tuple[torch.nn.Module, Path, Encoded]) -> Built:
    module, folder, encoded = tiny_variants
    return torch_logits(module, encoded), folder, encoded


def _cpu_runs_fp16(path: Path) -> bool:
    import onnxruntime as ort

    try:
        session = ort.InferenceSession(str(path), providers=CPU_PROVIDERS)
        ids = np.full((1, 4), 2000, dtype=np.int64)
        session.run(None, {"input_ids": ids, "attention_mask": np.ones_like(ids)})
    except Exception:
        return False
    return True


def test_conversion_keeps_io_types_and_halves_the_weights(built: Built, tmp_path: Path) -> None:
    _, folder, _ = built
    target = fp16.convert_fp16(folder / "model.fp32.onnx", tmp_path / "model.fp16.onnx")
    assert fp16.float16_initializers(target) > 10
    graph = onnx.load(str(target)).graph
    assert [i.type.tensor_type.elem_type for i in graph.input] == [onnx.TensorProto.INT64] * 2
    assert graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert op_counts(target)["Attention"] == TINY_SHAPE.num_layers  # fusion survives the conversion
    assert target.stat().st_size < 0.7 * (folder / "model.fp32.onnx").stat().st_size


def test_cpu_gate_passes_or_fp16_is_left_out(built: Built, tmp_path: Path) -> None:
    reference, folder, encoded = built
    outcome = fp16.build_fp16(reference, folder / "model.fp32.onnx", tmp_path / "m.onnx", encoded, threads=1,
                              gpu_providers=[])  # fmt: skip
    if _cpu_runs_fp16(folder / "model.fp32.onnx"):
        assert outcome.shipped and (tmp_path / "m.onnx").is_file()
        check = outcome.checks["CPUExecutionProvider"]
        assert check.max_abs_diff <= fp16.FP16_ATOL and check.label_agreement >= fp16.MIN_FP16_AGREEMENT
    else:
        assert not outcome.shipped and not (tmp_path / "m.onnx").exists()
    metrics = outcome.as_metrics(atol=fp16.FP16_ATOL, min_agreement=fp16.MIN_FP16_AGREEMENT)
    assert metrics["shipped"] is outcome.shipped


def test_a_provider_that_cannot_run_it_means_no_fp16_file(
    built: Built, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reference, folder, encoded = built

    def cannot(*_: Any, **__: Any) -> None:
        raise RuntimeError("NOT_IMPLEMENTED: Could not find an implementation for Attention(1) node")

    monkeypatch.setattr(fp16, "check_fp16", cannot)
    outcome = fp16.build_fp16(reference, folder / "model.fp32.onnx", tmp_path / "m.onnx", encoded,
                              gpu_providers=[])  # fmt: skip
    assert not outcome.shipped and not (tmp_path / "m.onnx").exists()
    assert outcome.reason is not None and "NOT_IMPLEMENTED" in outcome.reason
    assert "CPUExecutionProvider" in outcome.unsupported


def test_gate_failure_raises_and_removes_the_file(built: Built, tmp_path: Path) -> None:
    reference, folder, encoded = built
    if not _cpu_runs_fp16(folder / "model.fp32.onnx"):
        pytest.skip("this onnxruntime's CPU provider cannot run the fp16 file")
    with pytest.raises(AtolError, match=r"fp16-vs-torch\[CPUExecutionProvider\]") as caught:
        fp16.build_fp16(reference, folder / "model.fp32.onnx", tmp_path / "m.onnx", encoded, atol=1e-9,
                        threads=1, gpu_providers=[])  # fmt: skip
    assert caught.value.limit == 1e-9 and caught.value.value > 1e-9
    assert not (tmp_path / "m.onnx").exists()


def test_build_variants_ships_fp16_for_cuda(tmp_path: Path) -> None:
    encoded = encode(load_tokenizer(minilm_dir() / "tokenizer.json", 32), sample_texts(12), 32)
    built = build_variants(tiny_classifier(3), tmp_path, TINY_SHAPE, encoded, min_int8_agreement=None,
                           fp16=True, threads=1)  # fmt: skip
    assert built.fp16 is not None
    if built.fp16.shipped:
        variant = next(v for v in built.variants if v.precision == "fp16")
        assert variant.device == "cuda" and variant.batch_independent and variant.file == "model.fp16.onnx"
        assert "fp16" in built.logits()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(v.file for v in built.variants)


@pytest.mark.gpu
@pytest.mark.skipif(cuda_providers() is None, reason="needs a GPU and onnxruntime's CUDA provider")
def test_cuda_gate(built: Built, tmp_path: Path) -> None:
    reference, folder, encoded = built
    outcome = fp16.build_fp16(reference, folder / "model.fp32.onnx", tmp_path / "m.onnx", encoded)
    assert outcome.shipped
    check = outcome.checks["CUDAExecutionProvider"]
    assert check.max_abs_diff <= fp16.FP16_ATOL and check.label_agreement >= fp16.MIN_FP16_AGREEMENT
