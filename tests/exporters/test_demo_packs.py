from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

import nightclerk.exporters.build as build_module
from nightclerk.exporters.datasets import SHARED_DATA_ENV
from nightclerk.exporters.demo_packs import (
    EHR_SPECIALTY,
    LIT_PUBTYPE,
    TICKET_SYSTEM,
    ensure_demo_packs,
    ensure_summarizer,
)


def _no_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SHARED_DATA_ENV, str(tmp_path / "no-shared-data"))


def test_skips_with_a_reason_when_data_is_absent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _no_data(tmp_path, monkeypatch)
    lines: list[str] = []
    outcomes = ensure_demo_packs(tmp_path / "packs", tmp_path / "data", tmp_path / "wheels", say=lines.append)
    assert [(o.name, o.status) for o in outcomes] == [
        ("ehr-specialty", "skipped"),
        ("ticket-system", "skipped"),
        ("lit-pubtype", "skipped"),
        ("summarizer-extractive", "skipped"),
    ]
    assert "NIGHTCLERK_SHARED_DATA" in outcomes[0].detail and "NIGHTCLERK_SHARED_DATA" in outcomes[3].detail
    assert "nightclerk data fetch" in outcomes[1].detail and "nightclerk data fetch" in outcomes[2].detail
    assert len(lines) == 4


def test_present_packs_are_verified_not_rebuilt(
    tiny_pack_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _no_data(tmp_path, monkeypatch)
    packs = tmp_path / "packs"
    for pack in (EHR_SPECIALTY, TICKET_SYSTEM, LIT_PUBTYPE):
        shutil.copytree(tiny_pack_dir, packs / pack.name)
    # the manifest names the tiny pack; verification only checks files, which is what matters here
    outcomes = ensure_demo_packs(packs, tmp_path / "data", tmp_path / "wheels", say=lambda _: None)
    assert [o.status for o in outcomes] == ["present", "present", "present", "skipped"]


def test_tampered_pack_is_rebuilt(
    tiny_pack_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    notes = tmp_path / "shared" / "data" / "mtsamples" / "notes.csv"
    notes.parent.mkdir(parents=True)
    notes.write_text("transcription,specialty\n", encoding="utf-8")
    monkeypatch.setenv(SHARED_DATA_ENV, str(tmp_path / "shared" / "data"))
    packs = tmp_path / "packs"
    shutil.copytree(tiny_pack_dir, packs / "ehr-specialty")
    (packs / "ehr-specialty" / "model.int8.onnx").write_bytes(b"tampered")
    calls: list[dict[str, Any]] = []

    def fake_build(name: str, data: Path, text: str, label: str, out: Path, **options: Any) -> None:
        calls.append({"name": name, "data": data, "text": text, "label": label, **options})
        raise build_module.TooFewExamplesError("stub")

    monkeypatch.setattr(build_module, "build_pack", fake_build)
    lines: list[str] = []
    outcomes = ensure_demo_packs(packs, tmp_path / "data", tmp_path / "wheels", say=lines.append)
    assert "rebuilding" in lines[0]
    assert outcomes[0].status == "failed" and "TooFewExamplesError: stub" in outcomes[0].detail
    assert outcomes[1].status == "skipped"  # the next pack is still attempted
    assert calls[0]["name"] == "ehr-specialty" and calls[0]["data"] == notes
    assert (calls[0]["text"], calls[0]["label"], calls[0]["top_labels"]) == ("transcription", "specialty", 12)
    assert calls[0]["method"] == "finetune" and calls[0]["max_tokens"] == 128


def test_ehr_labels_are_specialties_not_document_types() -> None:
    from nightclerk.exporters.build import prepare_data
    from nightclerk.exporters.datasets import mtsamples_path
    from nightclerk.exporters.demo_packs import MTSAMPLES_DOCUMENT_TYPES

    path = mtsamples_path()
    if path is None:
        pytest.skip("MTSamples notes.csv not found")
    pack = EHR_SPECIALTY
    data = prepare_data(
        path, pack.text_column, pack.label_column, top_labels=pack.top_labels, min_examples=pack.min_examples,
        max_rows=pack.max_rows, drop_labels=pack.drop_labels,
    )  # fmt: skip
    assert not set(data.labels) & MTSAMPLES_DOCUMENT_TYPES
    assert len(data.labels) == 13 and data.labels[-1] == "other"
    assert data.stats["rows_dropped_by_label"] > 0 and data.stats["duplicates_dropped"] > 0


def test_summarizer_without_its_adapter_is_skipped_with_the_way_to_get_one(tmp_path: Path) -> None:
    lines: list[str] = []
    outcome = ensure_summarizer(
        tmp_path / "packs", tmp_path / "wheels", tmp_path / "models", tmp_path / "nope", say=lines.append
    )
    assert outcome.status == "skipped"
    assert (
        "no LoRA adapter" in outcome.detail
        and "GPU" in outcome.detail
        and lines == [f"summarizer: skipped: {outcome.detail}"]
    )


def test_summarizer_is_attempted_only_when_an_adapter_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _no_data(tmp_path, monkeypatch)
    outcomes = ensure_demo_packs(
        tmp_path / "packs", tmp_path / "data", tmp_path / "wheels", say=lambda _: None,
        summarizer_adapter=tmp_path / "adapter",
    )  # fmt: skip
    assert [(o.name, o.status) for o in outcomes][-1] == ("summarizer", "skipped")
    assert len(outcomes) == 5


def test_present_summarizer_is_verified_not_rebuilt(tiny_summarizer_pack: Path, tmp_path: Path) -> None:
    packs = tmp_path / "packs"
    shutil.copytree(tiny_summarizer_pack, packs / "summarizer")
    outcome = ensure_summarizer(
        packs, tmp_path / "wheels", tmp_path / "models", tmp_path / "nope", say=lambda _: None
    )
    assert outcome.status == "present" and outcome.manifest is not None
    assert outcome.manifest.task == "summarize"
