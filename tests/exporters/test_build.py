from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import numpy_helper

import nightclerk.exporters.encoder as encoder_module
from nightclerk.exporters.build import build_probe_pack, prepare_data
from nightclerk.exporters.datasets import load_labelled, mtsamples_path
from nightclerk.exporters.errors import (
    BuildError,
    DataNotFound,
    MissingColumnError,
    OutputNotWritable,
    SingleClassError,
    TooFewExamplesError,
)
from nightclerk.exporters.tokens import encode, load_tokenizer
from nightclerk.shared.manifest import verify_pack


def _csv(path: Path, rows: list[tuple[str, str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        writer.writerows(rows)
    return path


@pytest.fixture
def no_long_work(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if a build gets as far as loading the encoder."""

    def refuse(_: Path) -> None:
        raise AssertionError("the build loaded the encoder before rejecting its inputs")

    monkeypatch.setattr(encoder_module, "load_encoder", refuse)


@pytest.mark.usefixtures("no_long_work")
class TestInputsCheckedBeforeLongWork:
    def test_missing_label_column(self, tmp_path: Path) -> None:
        data = _csv(tmp_path / "d.csv", [(f"t{i}", "a") for i in range(40)])
        with pytest.raises(MissingColumnError, match="specialty"):
            build_probe_pack("p", data, "text", "specialty", tmp_path / "packs")

    def test_single_class(self, tmp_path: Path) -> None:
        rows = [(f"t{i}", "a") for i in range(40)] + [("u", "b")]
        with pytest.raises(SingleClassError, match="two or more"):
            build_probe_pack("p", _csv(tmp_path / "d.csv", rows), "text", "label", tmp_path / "packs")

    def test_too_few_examples(self, tmp_path: Path) -> None:
        rows = [("a", "x"), ("b", "y"), ("c", "x")]
        with pytest.raises(TooFewExamplesError):
            build_probe_pack("p", _csv(tmp_path / "d.csv", rows), "text", "label", tmp_path / "packs")

    def test_duplicates_do_not_count_as_examples(self, tmp_path: Path) -> None:
        rows = [("same text", "a")] * 30 + [(f"t{i}", "b") for i in range(30)]
        with pytest.raises(SingleClassError):
            build_probe_pack("p", _csv(tmp_path / "d.csv", rows), "text", "label", tmp_path / "packs")

    def test_unwritable_output(self, tmp_path: Path) -> None:
        data = _csv(tmp_path / "d.csv", [(f"t{i}", "ab"[i % 2]) for i in range(40)])
        blocker = tmp_path / "blocker"
        blocker.write_text("", encoding="utf-8")
        with pytest.raises(OutputNotWritable):
            build_probe_pack("p", data, "text", "label", blocker / "packs")

    def test_bad_name_and_max_tokens(self, tmp_path: Path) -> None:
        data = _csv(tmp_path / "d.csv", [(f"t{i}", "ab"[i % 2]) for i in range(40)])
        with pytest.raises(BuildError, match="invalid pack name"):
            build_probe_pack("Bad Name", data, "text", "label", tmp_path / "packs")
        with pytest.raises(BuildError, match="max_tokens"):
            build_probe_pack("p", data, "text", "label", tmp_path / "packs", max_tokens=1024)

    def test_missing_file(self, tmp_path: Path) -> None:
        with pytest.raises(DataNotFound):
            build_probe_pack("p", tmp_path / "none.csv", "text", "label", tmp_path / "packs")


def test_prepare_data_reports_what_it_did(tmp_path: Path) -> None:
    rows = [(f"a{i}", "a") for i in range(30)] + [(f"b{i}", "b") for i in range(20)]
    rows += [(f"c{i}", "c") for i in range(6)] + [(f"d{i}", "d") for i in range(6)] + [("a0", "b")]
    data = prepare_data(_csv(tmp_path / "d.csv", rows), "text", "label", top_labels=2, min_examples=5)
    assert data.labels == ["a", "b", "other"]
    assert data.stats["duplicates_dropped"] == 1 and data.stats["conflicting_texts"] == 1
    assert data.stats["train"] + data.stats["eval"] == 62
    assert data.stats["label_counts"]["eval"] == {"a": 6, "b": 4, "other": 2}


MTSAMPLES = mtsamples_path()


@pytest.mark.slow
@pytest.mark.skipif(MTSAMPLES is None, reason="MTSamples notes.csv is not on this machine")
def test_real_probe_build_on_a_slice_of_mtsamples(tmp_path: Path) -> None:
    assert MTSAMPLES is not None
    manifest = build_probe_pack(
        "ehr-slice",
        MTSAMPLES,
        "transcription",
        "specialty",
        tmp_path,
        top_labels=5,
        max_tokens=64,
        max_rows=300,
        progress=False,
    )
    pack = tmp_path / "ehr-slice"
    assert verify_pack(pack) == manifest
    assert manifest.method == "linear-probe" and manifest.labels[-1] == "other" and len(manifest.labels) == 6
    assert manifest.data_sha256 is not None and len(manifest.data_sha256) == 64
    metrics = manifest.metrics
    assert metrics["data"]["train"] + metrics["data"]["eval"] <= 300
    assert metrics["fusion"]["Attention"] == 6 and metrics["fusion"]["SkipLayerNormalization"] == 12
    assert metrics["parity"]["fp32_max_abs_diff"] <= 1e-3
    assert metrics["parity"]["int8_label_agreement"] >= 0.97
    for precision in ("fp32", "int8"):
        figures = metrics["eval"][precision]
        assert figures["accuracy"] > 1 / len(manifest.labels)  # better than chance
        assert set(figures["per_class"]) == set(manifest.labels)

    # Independent check: the ONNX fp32 logits equal torch (MiniLM + pooling) x the head found in the graph.
    model = onnx.load(str(pack / "model.fp32.onnx"))
    gemm = next(node for node in model.graph.node if node.op_type == "Gemm")
    weights = {init.name: numpy_helper.to_array(init) for init in model.graph.initializer}
    head_w, head_b = weights[gemm.input[1]], weights[gemm.input[2]]
    texts = [text for text, _ in load_labelled(MTSAMPLES, "transcription", "specialty")[:16]]
    encoded = encode(load_tokenizer(pack / "tokenizer.json", 64), texts, 64)
    width = max(map(len, encoded))
    ids = np.zeros((len(encoded), width), dtype=np.int64)
    mask = np.zeros_like(ids)
    for row, tokens in enumerate(encoded):
        ids[row, : len(tokens)] = tokens
        mask[row, : len(tokens)] = 1
    (logits,) = ort.InferenceSession(str(pack / "model.fp32.onnx"), providers=["CPUExecutionProvider"]).run(
        ["logits"], {"input_ids": ids, "attention_mask": mask}
    )
    embedder = encoder_module.SentenceEmbedder(encoder_module.load_encoder(encoder_module.minilm_dir()))
    with torch.inference_mode():
        pooled = embedder(torch.from_numpy(ids), torch.from_numpy(mask)).numpy()
    transposed = gemm.attribute and any(a.name == "transB" and a.i == 1 for a in gemm.attribute)
    reference = pooled @ (head_w.T if transposed else head_w) + head_b
    assert np.abs(logits - reference).max() < 1e-3
