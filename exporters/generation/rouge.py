"""ROUGE-1 / ROUGE-L F1 of summaries against references, and the lead-1 baseline they are judged beside.

Scores come from Google's ``rouge-score`` (the reference implementation: Porter stemming on, its own
tokenizer), averaged over documents. Lead-1 is the first sentence of the document as the extractive
summarizer splits it (:func:`nightclerk.workers.extractive.sentences`: ``pysbd``, MTSamples' stray comma
after section headers undone).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

LEAD_WORDS = 120  # a first sentence is found within the first words; segmenting a whole note is slow


@dataclass(frozen=True)
class RougeScores:
    rouge1: float
    rouge_l: float
    documents: int

    def as_metrics(self, prefix: str) -> dict[str, float]:
        return {f"{prefix}rouge1": round(self.rouge1, 4), f"{prefix}rougeL": round(self.rouge_l, 4)}


def rouge(predictions: Sequence[str], references: Sequence[str]) -> RougeScores:
    """Mean ROUGE-1 and ROUGE-L F1 over the pairs; an empty prediction scores 0."""
    from rouge_score import rouge_scorer

    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions for {len(references)} references")
    if not predictions:
        raise ValueError("no predictions to score")
    scorer = rouge_scorer.RougeScorer(["rouge1", "rougeL"], use_stemmer=True)
    r1 = rl = 0.0
    for prediction, reference in zip(predictions, references, strict=True):
        scores = scorer.score(reference, prediction)
        r1 += scores["rouge1"].fmeasure
        rl += scores["rougeL"].fmeasure
    n = len(predictions)
    return RougeScores(r1 / n, rl / n, n)


def lead_sentence(text: str) -> str:
    """The first sentence of a document, split as the extractive summarizer splits ('' when there is none)."""
    from nightclerk.workers.extractive import sentences

    return next(sentences(text, LEAD_WORDS), "")
