"""The ``summarizer-extractive`` pack: all-MiniLM-L6-v2 fine-tuned to find the sentence of a note that its
MTSamples ``description`` was drawn from -- a summarizer with no decoding loop, for bulk runs.

Labels come from overlap: among a note's first ``max_sentences`` candidate sentences (the worker's own
:func:`~nightclerk.workers.extractive.candidate_sentences`), the one with the highest ROUGE-L against the
description is ``summary`` when that ROUGE-L reaches ``min_best_rouge_l``; ``negatives_per_note`` others,
chosen at random, are ``context``. Only notes of the ``train`` and ``val`` parts
(:mod:`.summary_data`) give sentences; the classifier build (:func:`~nightclerk.exporters.build.build_pack`:
fine-tune, export, fusion, int8 and its gates, TF-IDF baseline) splits those rows for its own figures.

Quality is then measured as the worker will produce it: for each held-out ``eval`` note the best-scored
sentence is the summary, scored with ROUGE-1/L against the description beside lead-1 on the same notes,
for every CPU variant. The classifier's files are published again as a ``summarize`` pack whose manifest
carries the :class:`~nightclerk.shared.manifest.ExtractiveSpec`.
"""

from __future__ import annotations

import csv
import random
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nightclerk.exporters.errors import TrainingDataError
from nightclerk.exporters.generation.rouge import lead_sentence, rouge
from nightclerk.exporters.generation.summary_data import SummaryPair, mtsamples_pairs, split
from nightclerk.exporters.pack_writer import PackWriter
from nightclerk.shared.manifest import ExtractiveSpec, PackManifest, sha256_file
from nightclerk.workers.classifier import ClassifierRuntime
from nightclerk.workers.device import Placement
from nightclerk.workers.extractive import candidate_sentences, pick_sentences, scorer_input

SUMMARY, CONTEXT = "summary", "context"


@dataclass(frozen=True)
class ExtractiveRecipe:
    name: str = "summarizer-extractive"
    max_sentences: int = 24
    negatives_per_note: int = 4
    min_best_rouge_l: float = 0.2
    max_tokens: int = 64
    epochs: int = 3
    seed: int = 0
    eval_limit: int | None = None  # held-out notes scored (None: all)

    def spec(self) -> ExtractiveSpec:
        return ExtractiveSpec(positive_label=SUMMARY, max_sentences=self.max_sentences)


@dataclass(frozen=True)
class SentenceRows:
    rows: list[tuple[str, str]]  # (scorer input, label)
    notes_used: int
    notes_without_a_match: int  # best sentence below min_best_rouge_l: the description is not extractive


def sentence_rows(pairs: Sequence[SummaryPair], recipe: ExtractiveRecipe) -> SentenceRows:
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    spec = recipe.spec()
    rng = random.Random(recipe.seed)
    rows: list[tuple[str, str]] = []
    used = unmatched = 0
    for pair in pairs:
        sentences = candidate_sentences(pair.text, spec)
        if len(sentences) < 2:
            continue
        scores = [scorer.score(pair.reference, sentence)["rougeL"].fmeasure for sentence in sentences]
        best = max(range(len(sentences)), key=lambda i: scores[i])
        if scores[best] < recipe.min_best_rouge_l:
            unmatched += 1
            continue
        used += 1
        rows.append((scorer_input(best + 1, sentences[best]), SUMMARY))
        others = [i for i in range(len(sentences)) if i != best]
        for i in rng.sample(others, min(recipe.negatives_per_note, len(others))):
            rows.append((scorer_input(i + 1, sentences[i]), CONTEXT))
    return SentenceRows(rows, used, unmatched)


def _write_csv(rows: Sequence[tuple[str, str]], path: Path) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(("text", "label"))
        writer.writerows(rows)
    return path


def build_extractive(
    out_dir: Path,
    *,
    mtsamples: Path,
    recipe: ExtractiveRecipe = ExtractiveRecipe(),
    log: Callable[[str], None] = lambda message: None,
    progress: bool = True,
) -> PackManifest:
    """Build, score and publish ``out_dir/<recipe.name>``."""
    from nightclerk.exporters.build import build_pack
    from nightclerk.exporters.finetune_config import FinetuneConfig

    started = time.perf_counter()
    pairs = mtsamples_pairs(mtsamples)
    training = sentence_rows(split(pairs, "train") + split(pairs, "val"), recipe)
    held_out = split(pairs, "eval")[: recipe.eval_limit]
    if training.notes_used < 20 or not held_out:
        raise TrainingDataError(
            f"too little data: {training.notes_used} training notes with a matching sentence, "
            f"{len(held_out)} held-out notes"
        )
    log(f"{len(training.rows)} sentences from {training.notes_used} notes "
        f"({training.notes_without_a_match} notes had no sentence matching their description)")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="nightclerk-extractive-") as tmp:
        scratch = Path(tmp)
        classifier = build_pack(
            "sentences",
            _write_csv(training.rows, scratch / "sentences.csv"),
            "text",
            "label",
            scratch / "packs",
            method="finetune",
            top_labels=2,
            min_examples=10,
            max_tokens=recipe.max_tokens,
            seed=recipe.seed,
            finetune_config=FinetuneConfig(epochs=recipe.epochs, seed=recipe.seed),
            fp16=False,
            progress=progress,
        )
        pack_dir = scratch / "packs" / "sentences"
        spec = recipe.spec()
        metrics: dict[str, Any] = {
            "classifier": classifier.metrics,
            "training_sentences": len(training.rows),
            "training_notes": training.notes_used,
            "training_notes_without_a_match": training.notes_without_a_match,
        }
        metrics |= _quality(pack_dir, classifier, spec, held_out, log)
        with PackWriter(out_dir, recipe.name) as pack:
            for name in classifier.files:
                shutil.copyfile(pack_dir / name, pack.dir / name)
            metrics["build_s"] = round(time.perf_counter() - started, 1)
            return pack.commit(
                labels=list(classifier.labels),
                max_tokens=classifier.max_tokens,
                inputs=list(classifier.inputs),
                variants=list(classifier.variants),
                opset=classifier.opset,
                source_checkpoint=classifier.source_checkpoint,
                method="extractive-sentence-classifier",
                data_sha256=sha256_file(mtsamples),
                metrics=metrics,
                task="summarize",
                extractive=spec,
            )


def _quality(
    pack_dir: Path,
    classifier: PackManifest,
    spec: ExtractiveSpec,
    held_out: Sequence[SummaryPair],
    log: Callable[[str], None],
) -> dict[str, Any]:
    """ROUGE of the sentence picked per held-out note, for each CPU variant, beside lead-1; notes/s."""
    references = [pair.reference for pair in held_out]
    texts = [pair.text for pair in held_out]
    metrics: dict[str, Any] = rouge([lead_sentence(t) for t in texts], references).as_metrics(
        "lead1_ehr_note_"
    )
    metrics["eval_documents_ehr_note"] = len(held_out)
    placement = Placement("cpu", ["CPUExecutionProvider"])
    for variant in classifier.variants:
        if variant.device == "cuda":
            continue
        runtime = ClassifierRuntime(pack_dir, placement, precision=variant.precision)
        tick = time.perf_counter()
        picked = pick_sentences(runtime, spec, texts)
        seconds = time.perf_counter() - tick
        scores = rouge([summary or "" for summary in picked.summaries], references)
        prefix = "ehr_note_" if variant.precision == "fp32" else f"{variant.precision}_ehr_note_"
        metrics |= scores.as_metrics(prefix)
        metrics[f"{variant.precision}_notes_per_s"] = round(len(texts) / seconds, 1)
        log(f"{variant.precision}: ROUGE-L {scores.rouge_l:.3f} on {len(texts)} held-out notes, "
            f"{len(texts) / seconds:.1f} notes/s")  # fmt: skip
    return metrics
