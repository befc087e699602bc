from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

import nightclerk.exporters.encoder as encoder_module
import nightclerk.exporters.training as training_module
from nightclerk.exporters.build import build_pack, prepare_data
from nightclerk.exporters.datasets import mtsamples_path
from nightclerk.exporters.errors import (
    BuildError,
    CheckpointInvalid,
    CheckpointNotFound,
    DataNotFound,
    MissingColumnError,
    OutputNotWritable,
    SingleClassError,
    TooFewExamplesError,
    TrainingDataError,
)
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
    monkeypatch.setattr(training_module, "load_encoder", refuse)


@pytest.mark.usefixtures("no_long_work")
class TestInputsCheckedBeforeLongWork:
    def test_missing_label_column(self, tmp_path: Path) -> None:
        data = _csv(tmp_path / "d.csv", [(f"t{i}", "a") for i in range(40)])
        with pytest.raises(MissingColumnError, match="specialty"):
            build_pack("p", data, "text", "specialty", tmp_path / "packs", method="probe")

    def test_single_class(self, tmp_path: Path) -> None:
        rows = [(f"t{i}", "a") for i in range(40)] + [("u", "b")]
        with pytest.raises(SingleClassError, match="two or more"):
            build_pack(
                "p", _csv(tmp_path / "d.csv", rows), "text", "label", tmp_path / "packs", method="probe"
            )

    def test_too_few_examples(self, tmp_path: Path) -> None:
        rows = [("a", "x"), ("b", "y"), ("c", "x")]
        with pytest.raises(TooFewExamplesError):
            build_pack(
                "p", _csv(tmp_path / "d.csv", rows), "text", "label", tmp_path / "packs", method="probe"
            )

    def test_duplicates_do_not_count_as_examples(self, tmp_path: Path) -> None:
        rows = [("same text", "a")] * 30 + [(f"t{i}", "b") for i in range(30)]
        with pytest.raises(SingleClassError):
            build_pack(
                "p", _csv(tmp_path / "d.csv", rows), "text", "label", tmp_path / "packs", method="probe"
            )

    def test_unwritable_output(self, tmp_path: Path) -> None:
        data = _csv(tmp_path / "d.csv", [(f"t{i}", "ab"[i % 2]) for i in range(40)])
        blocker = tmp_path / "blocker"
        blocker.write_text("", encoding="utf-8")
        with pytest.raises(OutputNotWritable):
            build_pack("p", data, "text", "label", blocker / "packs", method="probe")

    def test_bad_name_and_max_tokens(self, tmp_path: Path) -> None:
        data = _csv(tmp_path / "d.csv", [(f"t{i}", "ab"[i % 2]) for i in range(40)])
        with pytest.raises(BuildError, match="invalid pack name"):
            build_pack("Bad Name", data, "text", "label", tmp_path / "packs", method="probe")
        with pytest.raises(BuildError, match="max_tokens"):
            build_pack("p", data, "text", "label", tmp_path / "packs", max_tokens=1024, method="probe")

    def test_missing_file(self, tmp_path: Path) -> None:
        with pytest.raises(DataNotFound):
            build_pack("p", tmp_path / "none.csv", "text", "label", tmp_path / "packs", method="probe")

    def test_missing_or_corrupt_base_checkpoint(self, tmp_path: Path) -> None:
        data = _csv(tmp_path / "d.csv", [(f"t{i}", "ab"[i % 2]) for i in range(40)])
        with pytest.raises(CheckpointNotFound, match="no checkpoint folder"):
            build_pack("p", data, "text", "label", tmp_path / "packs", base=tmp_path / "none")
        base = tmp_path / "base"
        base.mkdir()
        (base / "config.json").write_text('{"model_type": "bert"}', encoding="utf-8")
        with pytest.raises(CheckpointInvalid, match="non-positive"):
            build_pack("p", data, "text", "label", tmp_path / "packs", base=base)

    def test_unknown_method_and_val_fraction(self, tmp_path: Path) -> None:
        data = _csv(tmp_path / "d.csv", [(f"t{i}", "ab"[i % 2]) for i in range(40)])
        with pytest.raises(BuildError, match="unknown method"):
            build_pack("p", data, "text", "label", tmp_path / "packs", method="magic")
        with pytest.raises(BuildError, match="val_fraction"):
            build_pack("p", data, "text", "label", tmp_path / "packs", val_fraction=1.0)

    def test_train_cap_below_two_rows_per_label(self, tmp_path: Path) -> None:
        data = _csv(tmp_path / "d.csv", [(f"t{i}", "abc"[i % 3]) for i in range(60)])
        with pytest.raises(TooFewExamplesError, match="max_train_rows"):
            build_pack("p", data, "text", "label", tmp_path / "packs", max_train_rows=5)


def test_prepare_data_reports_what_it_did(tmp_path: Path) -> None:
    rows = [(f"a{i}", "a") for i in range(30)] + [(f"b{i}", "b") for i in range(20)]
    rows += [(f"c{i}", "c") for i in range(6)] + [(f"d{i}", "d") for i in range(6)] + [("a0", "b")]
    data = prepare_data(_csv(tmp_path / "d.csv", rows), "text", "label", top_labels=2, min_examples=5)
    assert data.labels == ["a", "b", "other"]
    assert data.stats["duplicates_dropped"] == 1 and data.stats["conflicting_texts"] == 1
    assert data.stats["train"] + data.stats["eval"] == 62
    assert data.stats["label_counts"]["eval"] == {"a": 6, "b": 4, "other": 2}


def test_dropped_labels_go_before_deduplication(tmp_path: Path) -> None:
    # "typeX" is a filing category: the same text also sits under a specialty, which must win
    rows = [(f"a{i}", "a") for i in range(12)] + [(f"b{i}", "b") for i in range(12)]
    rows += [(f"a{i}", "typeX") for i in range(12)] + [(f"t{i}", "typeX") for i in range(30)]
    path = _csv(tmp_path / "d.csv", rows)
    data = prepare_data(path, "text", "label", top_labels=5, min_examples=5, drop_labels=frozenset({"typeX"}))
    assert data.labels == ["a", "b"]
    assert data.stats["rows_dropped_by_label"] == 42 and data.stats["dropped_labels"] == ["typeX"]
    assert data.stats["rows_labelled"] == 66 and data.stats["duplicates_dropped"] == 0
    assert data.stats["train"] + data.stats["eval"] == 24
    kept = prepare_data(path, "text", "label", top_labels=5, min_examples=5)
    assert "typeX" in kept.labels  # without the option the category is a label of its own


def test_dropping_an_absent_label_is_an_error(tmp_path: Path) -> None:
    path = _csv(tmp_path / "d.csv", [(f"a{i}", "a") for i in range(12)] + [(f"b{i}", "b") for i in range(12)])
    with pytest.raises(TrainingDataError, match="Surgery"):
        prepare_data(path, "text", "label", top_labels=5, min_examples=5, drop_labels=frozenset({"Surgery"}))


def test_tiny_finetune_build_end_to_end(tmp_path: Path) -> None:
    """The whole finetune build on a tiny --base and synthetic rows: gates, baseline, fp16, manifest."""
    from nightclerk.exporters.finetune_config import FinetuneConfig
    from nightclerk.exporters.tiny import save_tiny_checkpoint

    words = {"engine": "oil coolant radiator", "bucket": "tooth pin weld", "hydraulic": "hose leak pump"}
    rows = [(f"{words[label]} unit {i} checked", label) for i in range(60) for label in words if i % 3 == 0]
    rows += [(f"unit {i} {words[label]} replaced", label) for i in range(40) for label in words if i % 2]
    data = _csv(tmp_path / "d.csv", rows)
    base = save_tiny_checkpoint(tmp_path / "base")
    manifest = build_pack(
        "tiny-ft", data, "text", "label", tmp_path / "packs", base=base, max_tokens=16, min_examples=5,
        finetune_config=FinetuneConfig(epochs=2, batch_size=8, lr=1e-3, head_lr=1e-2), progress=False,
        min_int8_agreement=None, max_int8_f1_drop=None,
    )  # fmt: skip
    assert verify_pack(tmp_path / "packs" / "tiny-ft") == manifest
    assert manifest.method == "finetune" and str(base.resolve()) in manifest.source_checkpoint
    assert manifest.data_sha256 is not None and manifest.max_tokens == 16
    metrics = manifest.metrics
    precisions = {v.precision for v in manifest.variants}
    assert {"fp32", "int8"} <= precisions and set(metrics["eval"]) == precisions
    assert metrics["fp16"]["shipped"] == ("fp16" in precisions)
    assert metrics["baseline"]["eval"]["n"] == metrics["data"]["eval"]
    assert set(metrics["margin_over_baseline"]) == precisions
    assert metrics["data"]["fit"] + metrics["data"]["val"] == metrics["data"]["train"]
    assert len(metrics["finetune"]["history"]) == 2 and metrics["finetune"]["device"] == "cpu"
    assert set(metrics["docs_per_s"]["cpu"]) == precisions
    assert metrics["build_seconds"]["total"] > 0 and metrics["device"]["train"] == "cpu"


MTSAMPLES = mtsamples_path()


@pytest.mark.slow
@pytest.mark.skipif(MTSAMPLES is None, reason="MTSamples notes.csv is not on this machine")
def test_real_finetune_on_a_slice_of_mtsamples(tmp_path: Path) -> None:
    """A short real fine-tune (MiniLM, 1 epoch, 64 tokens) end to end, then the worker's own runtime
    reproduces the manifest's figures on the eval split: training and serving tokenize alike."""
    from nightclerk.exporters.finetune_config import FinetuneConfig
    from nightclerk.workers.classifier import ClassifierRuntime
    from nightclerk.workers.device import Placement

    assert MTSAMPLES is not None
    options = {"top_labels": 4, "max_tokens": 64, "max_rows": 240}
    manifest = build_pack(
        "ehr-slice", MTSAMPLES, "transcription", "specialty", tmp_path, progress=False,
        finetune_config=FinetuneConfig(epochs=1), min_int8_agreement=None, max_int8_f1_drop=None, **options,
    )  # fmt: skip
    pack = tmp_path / "ehr-slice"
    assert verify_pack(pack) == manifest
    assert manifest.method == "finetune" and manifest.labels[-1] == "other" and len(manifest.labels) == 5
    metrics = manifest.metrics
    assert metrics["data"]["train"] + metrics["data"]["eval"] <= 240
    assert metrics["fusion"]["Attention"] == 6 and metrics["fusion"]["SkipLayerNormalization"] == 12
    assert metrics["parity"]["fp32_max_abs_diff"] <= 1e-3
    assert metrics["baseline"]["eval"]["n"] == metrics["eval"]["fp32"]["n"]
    for precision in ("fp32", "int8"):
        figures = metrics["eval"][precision]
        assert figures["accuracy"] > 1 / len(manifest.labels)  # better than chance
        assert set(figures["per_class"]) == set(manifest.labels)

    data = prepare_data(MTSAMPLES, "transcription", "specialty", top_labels=4, min_examples=10, max_rows=240)
    texts = [text for text, _ in data.split.eval]
    truth = np.array([manifest.labels.index(label) for _, label in data.split.eval])
    runtime = ClassifierRuntime(pack, Placement("cpu", ["CPUExecutionProvider"]), precision="fp32")
    predicted = runtime.classify(texts).probabilities.argmax(axis=1)
    assert round(float(np.mean(predicted == truth)), 4) == metrics["eval"]["fp32"]["accuracy"]


def test_unfusable_graph_fails_before_training(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A checkpoint (or library version) whose graph does not fuse fails before the fine-tune starts."""
    from nightclerk.exporters.errors import FusionError
    from nightclerk.exporters.tiny import save_tiny_checkpoint

    def unfusable(*_: object, **__: object) -> None:
        raise FusionError("model.onnx: 0 Attention nodes, expected 2")

    def no_training(*_: object, **__: object) -> None:
        raise AssertionError("training started before the fusion preflight")

    monkeypatch.setattr(training_module, "fuse_transformer", unfusable)
    monkeypatch.setattr(training_module, "finetune", no_training)
    data = _csv(tmp_path / "d.csv", [(f"text {i} about {'ab'[i % 2]}", "ab"[i % 2]) for i in range(40)])
    base = save_tiny_checkpoint(tmp_path / "base")
    with pytest.raises(FusionError, match="0 Attention"):
        build_pack("p", data, "text", "label", tmp_path / "packs", base=base, max_tokens=16, progress=False)
    assert list((tmp_path / "packs").iterdir()) == []
