from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nightclerk.shared.errors import InferenceError, PackInvalid
from nightclerk.shared.manifest import ExtractiveSpec
from nightclerk.shared.settings import Settings
from nightclerk.workers.classifier import ClassifierRuntime
from nightclerk.workers.device import Placement
from nightclerk.workers.extractive import (
    NO_SENTENCE,
    ExtractiveRuntime,
    candidate_sentences,
    scorer_input,
)
from nightclerk.workers.generation.summarizer import EMPTY_TEXT
from nightclerk.workers.pack_registry import PackRegistry

CPU = Placement("cpu", ["CPUExecutionProvider"])
NOTE = (
    "PROCEDURE:, Left knee arthroscopy with partial medial meniscectomy. The patient tolerated it well. "
    "Dr. Smith gave 2.5 mg of morphine. Ok. She will follow up in two weeks with physical therapy."
)


@pytest.fixture(scope="module")
def extractive_pack(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from nightclerk.exporters.tiny import build_tiny_extractive

    out = tmp_path_factory.mktemp("extractive")
    build_tiny_extractive(out, "summarizer-extractive", max_sentences=8)
    return out / "summarizer-extractive"


def test_candidates_are_the_first_sentences_long_enough() -> None:
    spec = ExtractiveSpec(positive_label="summary", max_sentences=3, min_sentence_words=2)
    assert candidate_sentences(NOTE, spec) == [
        "PROCEDURE: Left knee arthroscopy with partial medial meniscectomy.",
        "The patient tolerated it well.",
        "Dr. Smith gave 2.5 mg of morphine.",  # abbreviations and decimals do not end a sentence
    ]
    spec = ExtractiveSpec(positive_label="summary", max_sentences=10, min_sentence_words=2)
    assert "Ok." not in candidate_sentences(NOTE, spec)  # one word: not a candidate
    assert scorer_input(3, "Text.") == "[3] Text."


def test_the_summary_is_the_sentence_the_scorer_likes_best(extractive_pack: Path) -> None:
    runtime = ExtractiveRuntime(extractive_pack, CPU)
    result = runtime.summarize([NOTE], ["ehr_note"])
    sentences = candidate_sentences(NOTE, runtime.spec)
    inputs = [scorer_input(i, s) for i, s in enumerate(sentences, start=1)]
    probabilities = runtime.scorer.classify(inputs).probabilities[:, runtime.scorer.labels.index("summary")]
    assert result.summaries == [sentences[int(np.argmax(probabilities))]]
    assert result.reasons == [None] and result.prompt_tokens.tolist() == [len(sentences)]
    assert result.generate_ms[0] > 0


def test_empty_and_sentenceless_texts_get_reasons_and_the_rest_their_summaries(extractive_pack: Path) -> None:
    # fp32: batch-independent (dynamic int8 scales activations per batch, so near-ties could flip)
    runtime = ExtractiveRuntime(extractive_pack, CPU, precision="fp32")
    texts = ["", NOTE, "Ok.", "Всё хорошо, пациент выписан домой. Контроль через неделю.", NOTE * 200]
    result = runtime.summarize(texts, ["ehr_note"] * len(texts))
    assert result.reasons[0] == EMPTY_TEXT and result.summaries[0] is None
    assert result.reasons[2] == NO_SENTENCE and result.summaries[2] is None
    for i in (1, 3, 4):
        assert result.reasons[i] is None and result.summaries[i]
    alone = [runtime.summarize([t], ["ehr_note"]).summaries[0] for t in texts]
    assert alone == result.summaries  # one document's pick does not depend on its batch neighbours
    assert result.prompt_tokens[4] == runtime.spec.max_sentences  # a long note: only the first sentences


def test_the_registry_serves_an_extractive_pack_and_a_classifier_refuses_it(
    extractive_pack: Path,
) -> None:
    settings = Settings(packs_dir=extractive_pack.parent, summarize_packs={"ehr_note": extractive_pack.name})
    runtime = PackRegistry(settings, placement=CPU).summarizer_for("ehr_note")
    assert isinstance(runtime, ExtractiveRuntime) and runtime.task == "summarize"
    assert runtime.variant.precision in ("int8", "fp32")
    with pytest.raises(PackInvalid, match="not a classify pack"):
        ClassifierRuntime(extractive_pack, CPU)


def test_a_splitter_failure_is_an_inference_error_without_the_text(
    extractive_pack: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import nightclerk.workers.extractive as extractive

    class Broken:
        def segment(self, text: str) -> list[str]:
            raise ValueError(f"cannot split {text!r}")

    runtime = ExtractiveRuntime(extractive_pack, CPU)
    monkeypatch.setattr(extractive, "_segmenter", Broken)
    with pytest.raises(InferenceError) as caught:
        runtime.summarize([NOTE], ["ehr_note"])
    assert str(caught.value) == "sentence splitting failed: ValueError"  # the chunk retries one by one
