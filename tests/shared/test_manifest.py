"""The pack manifest: what each task requires, and generation settings checked at load."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from nightclerk.shared.manifest import GenerationSpec, PackManifest

CHAT = "<|im_start|>user\nSummarize this report in one sentence.\n{text}<|im_end|>\n<|im_start|>assistant\n"


def _manifest(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "p",
        "version": "abc",
        "task": "classify",
        "labels": ["a", "b"],
        "max_tokens": 128,
        "inputs": ["input_ids", "attention_mask"],
        "variants": [{"precision": "fp32", "file": "model.onnx", "batch_independent": True}],
        "opset": 17,
        "source_checkpoint": "tiny",
        "method": "random-init",
        "files": {"model.onnx": "0" * 64, "tokenizer.json": "1" * 64},
    }
    return {**base, **changes}


def _generation(**changes: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "layout": "decoder-only",
        "eos_token_ids": [2],
        "pad_token_id": 0,
        "max_input_tokens": 400,
        "max_new_tokens": 48,
        "prompts": {"default": CHAT},
    }
    return {**spec, **changes}


def _summarizer(**spec: Any) -> dict[str, Any]:
    return _manifest(
        task="summarize",
        labels=[],
        variants=[
            {"precision": "fp32", "file": "decoder.onnx", "batch_independent": True,
             "graphs": {"decoder": "decoder.onnx"}}
        ],
        files={"decoder.onnx": "0" * 64, "tokenizer.json": "1" * 64},
        generation=_generation(**spec),
    )  # fmt: skip


def test_classify_needs_two_labels() -> None:
    PackManifest.model_validate(_manifest())
    with pytest.raises(ValidationError, match="two or more labels"):
        PackManifest.model_validate(_manifest(labels=["a"]))


def test_summarize_needs_generation_settings() -> None:
    manifest = PackManifest.model_validate(_summarizer())
    assert manifest.generation is not None and manifest.generation.prompt_for("ehr_note") == CHAT
    with pytest.raises(ValidationError, match="generation or extractive settings"):
        PackManifest.model_validate({**_summarizer(), "generation": None})


def test_extractive_summarize_packs_name_a_positive_label_among_their_labels() -> None:
    extractive = {"positive_label": "summary", "max_sentences": 24}
    data = {**_summarizer(), "generation": None, "extractive": extractive, "labels": ["context", "summary"]}
    assert PackManifest.model_validate(data).extractive is not None
    with pytest.raises(ValidationError, match="positive label among them"):
        PackManifest.model_validate({**data, "labels": ["context", "other"]})
    with pytest.raises(ValidationError, match="exactly one"):
        PackManifest.model_validate({**data, "generation": _summarizer()["generation"]})


def test_every_graph_file_needs_a_hash() -> None:
    data = _summarizer()
    data["variants"][0]["graphs"]["encoder"] = "encoder.onnx"
    with pytest.raises(ValidationError, match=r"encoder\.onnx"):
        PackManifest.model_validate(data)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"prompts": {"default": "no placeholder"}}, "exactly one"),
        ({"prompts": {"default": "{text} twice {text}"}}, "exactly one"),
        ({"layout": "encoder-decoder"}, "decoder_start_token_id"),
        ({"eos_token_ids": []}, "at least 1"),
        ({"max_new_tokens": 0}, "greater than or equal"),
    ],
)
def test_bad_generation_settings_are_refused(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        GenerationSpec.model_validate(_generation(**changes))


def test_prompt_for_a_kind_falls_back_to_default() -> None:
    spec = GenerationSpec.model_validate(
        _generation(prompts={"default": CHAT, "literature": "Title: {text}"})
    )
    assert spec.prompt_for("literature") == "Title: {text}"
    assert spec.prompt_for("repair_ticket") == CHAT
