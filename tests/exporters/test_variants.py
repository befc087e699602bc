from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

import nightclerk.exporters.variants as variants
from nightclerk.exporters.encoder import minilm_dir
from nightclerk.exporters.errors import LabelAgreementError, MacroF1DropError
from nightclerk.exporters.optimize import op_counts
from nightclerk.exporters.tiny import TINY_SHAPE, sample_texts, tiny_classifier
from nightclerk.exporters.tokens import Encoded, encode, load_tokenizer


@pytest.fixture(scope="module")
def encoded() -> Encoded:
    return encode(load_tokenizer(minilm_dir() / "tokenizer.json", 32), sample_texts(12), 32)


def test_first_passing_recipe_is_kept(tmp_path: Path, encoded: Encoded) -> None:
    built = variants.build_variants(tiny_classifier(3), tmp_path, TINY_SHAPE, encoded, min_int8_agreement=0.0,
                                    threads=1)  # fmt: skip
    assert built.quantization["recipe"] == "all"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.fp32.onnx", "model.int8.onnx"]
    assert [v.precision for v in built.variants] == ["int8", "fp32"]


def test_falls_back_to_keeping_ffn_down_projections_fp32(
    tmp_path: Path, encoded: Encoded, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = variants.check_int8
    calls: list[int] = []

    def first_two_fail(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) <= 2:
            raise LabelAgreementError("int8-vs-fp32", 0.9, 0.97, "stub")
        return real(*args, **kwargs)

    monkeypatch.setattr(variants, "check_int8", first_two_fail)
    built = variants.build_variants(tiny_classifier(3), tmp_path, TINY_SHAPE, encoded, threads=1,
                                    min_int8_agreement=None)  # fmt: skip
    assert built.quantization["recipe"] == "ffn-down-fp32"
    assert built.quantization["kept_fp32_nodes"] == TINY_SHAPE.num_layers
    assert built.quantization["by_recipe"]["all"] == {"rejected_by": "int8-vs-fp32", "value": 0.9}
    assert built.quantization["by_recipe"]["all-7bit"] == {"rejected_by": "int8-vs-fp32", "value": 0.9}
    counts = op_counts(tmp_path / "model.int8.onnx")
    assert counts["MatMul"] >= TINY_SHAPE.num_layers  # the kept projections are still float MatMuls


def test_macro_f1_drop_rejects_a_recipe(
    tmp_path: Path, encoded: Encoded, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = variants.check_int8
    calls: list[int] = []

    def first_drops(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        assert kwargs["max_f1_drop"] == 0.01 and kwargs["y_true"] is not None
        if len(calls) <= 2:
            raise MacroF1DropError("int8-macro-f1", 0.03, 0.01, "stub")
        return real(*args, **kwargs)

    monkeypatch.setattr(variants, "check_int8", first_drops)
    y_true = np.arange(len(encoded)) % 3
    built = variants.build_variants(
        tiny_classifier(3), tmp_path, TINY_SHAPE, encoded, threads=1, min_int8_agreement=None, y_true=y_true,
        max_int8_f1_drop=0.01,
    )  # fmt: skip
    assert built.quantization["recipe"] == "ffn-down-fp32"
    assert built.quantization["by_recipe"]["all"] == {"rejected_by": "int8-macro-f1", "value": 0.03}
    assert "macro_f1_drop" in built.quantization["by_recipe"]["ffn-down-fp32"]


def _int8_weights(path: Path) -> list[np.ndarray]:
    model = onnx.load(str(path))
    return [numpy_helper.to_array(t) for t in model.graph.initializer if t.data_type == onnx.TensorProto.INT8]


def test_the_7bit_twin_keeps_its_weights_within_7_bits(
    tmp_path: Path, encoded: Encoded, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = variants.check_int8
    seen: list[Path] = []

    def eight_bits_fail(fp32_logits: Any, int8_path: Path, *args: Any, **kwargs: Any) -> Any:
        weights = _int8_weights(int8_path)
        assert weights
        seen.append(int8_path)
        if len(seen) == 1:
            assert max(int(np.abs(w.astype(np.int16)).max()) for w in weights) == 127  # full range
            raise LabelAgreementError("int8-vs-fp32", 0.98, 0.99, "stub")
        assert max(int(np.abs(w.astype(np.int16)).max()) for w in weights) <= 64
        return real(fp32_logits, int8_path, *args, **kwargs)

    monkeypatch.setattr(variants, "check_int8", eight_bits_fail)
    built = variants.build_variants(tiny_classifier(3), tmp_path, TINY_SHAPE, encoded, threads=1,
                                    min_int8_agreement=None)  # fmt: skip
    assert built.quantization["recipe"] == "all-7bit"
    assert built.quantization["weight_bits"] == 7
    assert len(seen) == 2


def test_no_recipe_passes_no_int8_file_is_left(tmp_path: Path, encoded: Encoded) -> None:
    with pytest.raises(LabelAgreementError):
        variants.build_variants(tiny_classifier(3), tmp_path, TINY_SHAPE, encoded, min_int8_agreement=1.01,
                                threads=1)  # fmt: skip
    assert not (tmp_path / "model.int8.onnx").exists()
