from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from nightclerk.exporters.errors import AtolError, LabelAgreementError, MacroF1DropError, ParityError
from nightclerk.exporters.parity import (
    check_agreement,
    check_atol,
    check_fp32,
    check_int8,
    check_macro_f1_drop,
    parity_metrics,
)
from nightclerk.exporters.tiny import tiny_classifier
from nightclerk.exporters.tokens import Encoded
from nightclerk.shared.errors import PackError

Built = tuple[torch.nn.Module, Path, Encoded]


@pytest.fixture(scope="module")
def built(tiny_variants: tuple[torch.nn.Module, Path, Encoded]) -> Built:
    module, folder, encoded = tiny_variants
    return module, folder, encoded


def test_parity_passes_and_records_figures(built: Built) -> None:
    module, folder, encoded = built
    fp32 = check_fp32(module, folder / "model.fp32.onnx", encoded, threads=1)
    int8 = check_int8(fp32.logits, folder / "model.int8.onnx", encoded, min_agreement=None, threads=1)
    figures = parity_metrics(fp32, int8, atol=1e-3, min_agreement=None)
    assert figures["n_docs"] == len(encoded)
    assert fp32.max_abs_diff < 1e-4 and figures["fp32_label_agreement"] == 1.0
    assert 0.0 <= int8.label_agreement <= 1.0 and 0.0 <= int8.batch_agreement <= 1.0
    assert int8.logits.shape == (len(encoded), 3)
    assert fp32.docs_per_s > 0 and int8.docs_per_s > 0


def test_perturbed_weights_fail_the_atol_gate(built: Built) -> None:
    module, folder, encoded = built
    perturbed = tiny_classifier(3, seed=2)
    perturbed.load_state_dict(module.state_dict())
    with torch.no_grad():
        perturbed.model.classifier.weight.add_(0.05)
    with pytest.raises(AtolError) as caught:
        check_fp32(perturbed, folder / "model.fp32.onnx", encoded, threads=1)
    error = caught.value
    assert isinstance(error, ParityError) and isinstance(error, PackError)
    assert error.gate == "fp32-vs-torch" and error.value > error.limit == 1e-3
    assert "fp32-vs-torch" in str(error) and "atol" in str(error)


def test_agreement_gate_is_wired_in(built: Built) -> None:
    module, folder, encoded = built
    fp32 = check_fp32(module, folder / "model.fp32.onnx", encoded, threads=1)
    with pytest.raises(LabelAgreementError, match="int8-vs-fp32"):  # above 1: can never pass
        check_int8(fp32.logits, folder / "model.int8.onnx", encoded, min_agreement=1.01, threads=1)


def test_check_helpers() -> None:
    a = np.array([[1.0, 0.0], [0.0, 1.0]])
    assert check_atol(a, a + 1e-6, atol=1e-3, what="x") == pytest.approx(1e-6)
    with pytest.raises(AtolError, match=r"0\.5"):
        check_atol(a, a + 0.5, atol=1e-3, what="x")
    with pytest.raises(AtolError):
        check_atol(a, a * np.nan, atol=1e-3, what="nan")
    flipped = a[:, ::-1]
    assert check_agreement(a, flipped, minimum=None, what="y") == 0.0
    with pytest.raises(LabelAgreementError) as caught:
        check_agreement(a, flipped, minimum=0.97, what="y")
    assert caught.value.value == 0.0 and caught.value.limit == 0.97


def test_int8_macro_f1_gate(built: Built) -> None:
    module, folder, encoded = built
    fp32 = check_fp32(module, folder / "model.fp32.onnx", encoded, threads=1)
    y_true = fp32.logits.argmax(axis=1)  # fp32 is perfect on these labels: any int8 flip is a drop
    int8 = check_int8(fp32.logits, folder / "model.int8.onnx", encoded, min_agreement=None, y_true=y_true,
                      max_f1_drop=1.0, threads=1)  # fmt: skip
    assert int8.macro_f1_drop is not None and int8.macro_f1_drop >= 0.0
    figures = parity_metrics(fp32, int8, atol=1e-3, min_agreement=None, max_f1_drop=1.0)
    assert figures["max_int8_macro_f1_drop"] == 1.0 and figures["int8_macro_f1_drop"] is not None


def test_macro_f1_drop_helper() -> None:
    y_true = np.array([0, 0, 1, 1])
    perfect = np.eye(2)[y_true]
    worse = np.eye(2)[[0, 0, 1, 0]]
    assert check_macro_f1_drop(y_true, perfect, perfect, max_drop=0.0, what="z") == 0.0
    with pytest.raises(MacroF1DropError, match=r"points below fp32") as caught:
        check_macro_f1_drop(y_true, perfect, worse, max_drop=0.01, what="int8-macro-f1")
    assert caught.value.gate == "int8-macro-f1" and caught.value.value > 0.2 and caught.value.limit == 0.01
    assert isinstance(caught.value, ParityError)
    assert check_macro_f1_drop(y_true, perfect, worse, max_drop=None, what="z") > 0.2
