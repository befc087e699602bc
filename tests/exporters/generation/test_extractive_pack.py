from __future__ import annotations

import csv
import random
from pathlib import Path

import pytest

from nightclerk.exporters.generation.extractive_pack import (
    CONTEXT,
    SUMMARY,
    ExtractiveRecipe,
    build_extractive,
    sentence_rows,
)
from nightclerk.exporters.generation.summary_data import SummaryPair, mtsamples_pairs
from nightclerk.shared.manifest import verify_pack

WORDS = [
    "knee",
    "hip",
    "shoulder",
    "pain",
    "fracture",
    "surgery",
    "patient",
    "tolerated",
    "procedure",
    "stable",
    "follow",
    "clinic",
]
PROCEDURES = ["arthroscopy", "cholecystectomy", "appendectomy", "colonoscopy", "cystoscopy", "biopsy"]


def _note(rng: random.Random) -> tuple[str, str]:
    """Six sentences; the description restates the procedure sentence, which sits at position 2 or 3."""
    procedure = rng.choice(PROCEDURES)
    filler = [" ".join(rng.choices(WORDS, k=8)).capitalize() + "." for _ in range(5)]
    key = f"The patient underwent {procedure} of the {rng.choice(WORDS)} without complication."
    filler.insert(rng.choice([1, 2]), key)
    return " ".join(filler), f"Patient underwent {procedure}."


def test_the_best_matching_sentence_is_the_positive_and_others_are_context() -> None:
    rng = random.Random(0)
    text, description = _note(rng)
    pairs = [
        SummaryPair(text, description, "ehr_note"),
        SummaryPair(
            "Nothing alike here at all. Entirely different words.", "Cardiac catheterization.", "ehr_note"
        ),
        SummaryPair("One sentence only.", "One sentence.", "ehr_note"),
    ]
    rows = sentence_rows(pairs, ExtractiveRecipe(negatives_per_note=3))
    assert (rows.notes_used, rows.notes_without_a_match) == (1, 1)  # the one-sentence note is not a choice
    positives = [text for text, label in rows.rows if label == SUMMARY]
    assert len(positives) == 1 and "underwent" in positives[0] and positives[0].startswith(("[2]", "[3]"))
    assert sum(label == CONTEXT for _, label in rows.rows) == 3


@pytest.mark.slow
def test_build_publishes_an_extractive_summarize_pack_with_its_figures(tmp_path: Path) -> None:
    rng = random.Random(1)
    notes = tmp_path / "notes.csv"
    with notes.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(("note_id", "description", "transcription"))
        for i in range(90):
            text, description = _note(rng)
            writer.writerow((f"n{i}", description, f"Note {i}. {text}"))
    recipe = ExtractiveRecipe(name="extractive-test", max_sentences=8, epochs=2, max_tokens=32)
    manifest = build_extractive(tmp_path / "packs", mtsamples=notes, recipe=recipe, progress=False)
    assert verify_pack(tmp_path / "packs" / "extractive-test", task="summarize") == manifest
    assert manifest.extractive is not None and manifest.extractive.positive_label == SUMMARY
    assert sorted(manifest.labels) == [CONTEXT, SUMMARY]
    held_out = [p for p in mtsamples_pairs(notes) if p.part == "eval"]
    metrics = manifest.metrics
    assert metrics["eval_documents_ehr_note"] == len(held_out)
    for key in ("ehr_note_rougeL", "ehr_note_rouge1", "lead1_ehr_note_rougeL", "fp32_notes_per_s"):
        assert 0.0 <= metrics[key] <= (1.0 if "rouge" in key else 1e6), key
    assert metrics["classifier"]["eval"]  # the sentence classifier's own held-out figures travel along
