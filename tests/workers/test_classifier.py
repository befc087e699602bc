from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from nightclerk.shared.errors import ConfigError, PackIntegrityError, PackInvalid
from nightclerk.workers.classifier import ClassifierRuntime
from nightclerk.workers.device import Placement

CPU = Placement("cpu", ["CPUExecutionProvider"])
TEXTS = [
    "Bucket cylinder leaking on the left side.",
    "ENGINE WON'T START " * 40,
    "replace hydraulic hose",
    "a",
    "Patient presents with chest pain and shortness of breath. " * 30,
]


def test_probabilities_per_document_in_label_order(tiny_packs: Path) -> None:
    runtime = ClassifierRuntime(tiny_packs / "ticket-system", CPU, precision="fp32")
    out = runtime.classify(TEXTS)
    assert out.probabilities.shape == (len(TEXTS), len(runtime.labels))
    np.testing.assert_allclose(out.probabilities.sum(axis=1), 1.0, atol=1e-5)
    assert (out.infer_ms > 0).all() and (out.tokenize_ms > 0).all()
    assert runtime.classify([]).probabilities.shape == (0, len(runtime.labels))


def test_fp32_output_does_not_depend_on_batch_neighbours(tiny_packs: Path) -> None:
    runtime = ClassifierRuntime(tiny_packs / "ehr-specialty", CPU, precision="fp32", token_budget=64)
    together = runtime.classify(TEXTS).probabilities
    alone = np.vstack([runtime.classify([text]).probabilities for text in TEXTS])
    np.testing.assert_allclose(together, alone, atol=1e-5)


def test_long_text_is_cut_to_the_token_budget(tiny_packs: Path) -> None:
    runtime = ClassifierRuntime(tiny_packs / "ehr-specialty", CPU, precision="fp32")
    words = "word " * 50_000
    same = runtime.classify([words, " ".join(words.split()[:64])]).probabilities
    np.testing.assert_allclose(same[0], same[1], atol=1e-6)


def test_max_tokens_overrides_the_packs_truncation(tiny_packs: Path) -> None:
    pack = ClassifierRuntime(tiny_packs / "ehr-specialty", CPU, precision="fp32")
    longer = ClassifierRuntime(tiny_packs / "ehr-specialty", CPU, precision="fp32", max_tokens=256)
    assert longer.max_tokens == 256 and pack.max_tokens == pack.manifest.max_tokens < 256
    words = " ".join(f"w{i % 7}" for i in range(1000))
    assert len(longer.tokenizer.encode(words).ids) == 256
    # within the pack's budget the cut text is the whole input; past it, only the longer runtime reads on
    first = " ".join(words.split()[: pack.max_tokens])
    np.testing.assert_allclose(pack.classify([words]).probabilities, pack.classify([first]).probabilities)
    assert not np.allclose(longer.classify([words]).probabilities, pack.classify([words]).probabilities)


def test_cpu_auto_takes_the_variant_measured_fastest_and_an_absent_variant_is_a_config_error(
    tiny_packs: Path,
) -> None:
    runtime = ClassifierRuntime(tiny_packs / "ehr-specialty", CPU)
    assert set(runtime.measured_s) == {"int8", "fp32"}
    assert runtime.variant.precision == min(runtime.measured_s, key=runtime.measured_s.__getitem__)
    assert ClassifierRuntime(tiny_packs / "ehr-specialty", CPU, precision="int8").measured_s == {}
    with pytest.raises(ConfigError, match="no fp16 variant"):
        ClassifierRuntime(tiny_packs / "ehr-specialty", CPU, precision="fp16")


def test_a_tampered_pack_is_refused(
    tiny_packs: Path, tmp_path: Path, flip_a_byte: Callable[[Path], None]
) -> None:
    pack = tmp_path / "ehr-specialty"
    shutil.copytree(tiny_packs / "ehr-specialty", pack)
    flip_a_byte(pack / "model.int8.onnx")
    with pytest.raises(PackIntegrityError, match=r"model\.int8\.onnx"):
        ClassifierRuntime(pack, CPU)


def test_a_summarize_pack_is_not_loaded_as_a_classifier(tiny_packs: Path, tmp_path: Path) -> None:
    from nightclerk.shared.manifest import GenerationSpec, read_manifest, write_manifest

    pack = tmp_path / "summarizer"
    shutil.copytree(tiny_packs / "ehr-specialty", pack)
    manifest = read_manifest(pack)
    spec = GenerationSpec(
        layout="decoder-only", eos_token_ids=[2], pad_token_id=0, max_input_tokens=64, max_new_tokens=8,
        prompts={"default": "Summarize: {text}"},
    )  # fmt: skip
    write_manifest(pack, manifest.model_copy(update={"task": "summarize", "labels": [], "generation": spec}))
    with pytest.raises(PackInvalid, match="summarize pack, not a classify pack"):
        ClassifierRuntime(pack, CPU)
