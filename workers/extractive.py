"""An extractive summarize pack: a sentence classifier picks the document's most summary-like sentence(s).

The pack is a classifier (the same files and runtime as the classify packs) over sentences written as
``[position] sentence``, with an :class:`~nightclerk.shared.manifest.ExtractiveSpec` saying which label
means "summary" and how many sentences from the top of the document are candidates. One encoder pass per
candidate sentence and no decoding loop: for bulk runs where a sentence taken from the document will do.

Sentences are found by ``pysbd`` (rule-based, English rules; handles abbreviations such as "Dr." and
decimals that a regular expression would split on). The pack build uses this same function.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from nightclerk.shared.errors import InferenceError, PackInvalid
from nightclerk.shared.manifest import ExtractiveSpec, Variant
from nightclerk.workers.classifier import ClassifierRuntime
from nightclerk.workers.device import Placement
from nightclerk.workers.generation.summarizer import EMPTY_TEXT, Summarized

NO_SENTENCE = "no sentence long enough to quote"
WORDS_PER_SENTENCE = 40  # words segmented per candidate wanted: segmenting a whole long note is slow


_local = threading.local()


def _segmenter() -> Any:
    """One ``pysbd`` segmenter per thread: ``segment`` keeps the text it works on in the object."""
    segmenter = getattr(_local, "segmenter", None)
    if segmenter is None:
        import pysbd

        segmenter = _local.segmenter = pysbd.Segmenter(language="en", clean=False)
    return segmenter


def sentences(text: str, max_words: int) -> Iterator[str]:
    """The sentences of the text's first ``max_words`` words, in order, whitespace collapsed.

    MTSamples-style section headers written as ``"HISTORY:, text"`` lose their stray comma first.
    """
    words = text.replace(":,", ": ").split()[:max_words]
    for sentence in _segmenter().segment(" ".join(words)):
        cleaned = " ".join(str(sentence).split())
        if cleaned:
            yield cleaned


def candidate_sentences(text: str, spec: ExtractiveSpec) -> list[str]:
    """The first ``spec.max_sentences`` sentences with at least ``spec.min_sentence_words`` words."""
    found = []
    for sentence in sentences(text, spec.max_sentences * WORDS_PER_SENTENCE):
        if len(sentence.split()) >= spec.min_sentence_words:
            found.append(sentence)
            if len(found) == spec.max_sentences:
                break
    return found


def scorer_input(position: int, sentence: str) -> str:
    """What the sentence classifier reads: the sentence's 1-based position, then the sentence."""
    return f"[{position}] {sentence}"


class SentenceScorer(ClassifierRuntime):
    """The classifier runtime over an extractive summarize pack."""

    task = "summarize"


class ExtractiveRuntime:
    task = "summarize"

    def __init__(
        self,
        pack_dir: Path,
        placement: Placement,
        *,
        precision: str = "auto",
        threads: int = 0,
        token_budget: int = 8192,
        max_batch_docs: int = 64,
    ) -> None:
        self.scorer = SentenceScorer(
            pack_dir, placement, precision=precision, threads=threads, token_budget=token_budget,
            max_batch_docs=max_batch_docs,
        )  # fmt: skip
        self.manifest = self.scorer.manifest
        if self.manifest.extractive is None:
            raise PackInvalid(f"pack {self.manifest.name} is not an extractive summarize pack")
        self.spec: ExtractiveSpec = self.manifest.extractive

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def variant(self) -> Variant:
        return self.scorer.variant

    @property
    def version(self) -> str:
        return self.manifest.version

    def summarize(self, texts: Sequence[str], kinds: Sequence[str]) -> Summarized:
        return pick_sentences(self.scorer, self.spec, texts)


def pick_sentences(scorer: ClassifierRuntime, spec: ExtractiveSpec, texts: Sequence[str]) -> Summarized:
    """Per document: its best sentence(s) by ``scorer``, in document order, or a reason why there are none.

    ``prompt_tokens`` holds the number of sentences scored (there is no prompt), ``new_tokens`` zero, and
    ``generate_ms`` the document's share of tokenizing and scoring.
    """
    n = len(texts)
    summaries: list[str | None] = [None] * n
    reasons: list[str | None] = [None] * n
    scored = np.zeros(n, dtype=np.int64)
    elapsed_ms = np.zeros(n)
    inputs: list[str] = []
    found: list[list[str]] = [[] for _ in texts]
    for index, text in enumerate(texts):
        if not text.strip():
            reasons[index] = EMPTY_TEXT
            continue
        try:
            found[index] = candidate_sentences(text, spec)
        except Exception as exc:  # the splitter's message may quote the text: keep only its type
            raise InferenceError(f"sentence splitting failed: {type(exc).__name__}") from None
        if not found[index]:
            reasons[index] = NO_SENTENCE
        inputs.extend(scorer_input(p, sentence) for p, sentence in enumerate(found[index], start=1))
    if inputs:
        classified = scorer.classify(inputs)
        probability = classified.probabilities[:, scorer.labels.index(spec.positive_label)]
        cost = classified.tokenize_ms + classified.infer_ms
        start = 0
        for index, candidates in enumerate(found):
            if not candidates:
                continue
            rows = slice(start, start + len(candidates))
            best = np.argsort(-probability[rows], kind="stable")[: spec.summary_sentences]
            summaries[index] = " ".join(candidates[i] for i in sorted(best.tolist()))
            scored[index] = len(candidates)
            elapsed_ms[index] = float(cost[rows].sum())
            start += len(candidates)
    return Summarized(summaries, reasons, scored, np.zeros(n, dtype=np.int64), elapsed_ms)
