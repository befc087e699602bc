"""Build a linear-probe classification pack from a labelled CSV, checking the inputs before long work.

Order: name, output folder, checkpoint and data are checked first (seconds); then the encoder embeds the
texts, the head is fitted, the module is exported, fused and quantized, the parity gates run on the eval
split, and only then is the pack written and renamed into place.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nightclerk.exporters.datasets import MISSING_LABELS, load_labelled
from nightclerk.exporters.errors import BuildError, SingleClassError, TooFewExamplesError
from nightclerk.exporters.pack_writer import check_name, check_writable
from nightclerk.exporters.splits import (
    Split,
    apply_labels,
    dedupe,
    label_counts,
    select_labels,
    stratified_sample,
    stratified_split,
)
from nightclerk.shared.logging import get_logger
from nightclerk.shared.manifest import TOKENIZER_FILE, PackManifest, sha256_file

log = get_logger(__name__)
METHOD = "linear-probe"


@dataclass(frozen=True)
class PreparedData:
    labels: list[str]
    split: Split
    stats: dict[str, Any] = field(default_factory=dict)


def _ids(rows: Sequence[tuple[str, str]], labels: list[str]) -> np.ndarray:
    index = {label: i for i, label in enumerate(labels)}
    return np.array([index[label] for _, label in rows], dtype=np.int64)


def prepare_data(
    data_path: Path,
    text_column: str,
    label_column: str,
    *,
    top_labels: int,
    min_examples: int = 10,
    eval_fraction: float = 0.2,
    max_rows: int | None = None,
    seed: int = 0,
    missing_labels: frozenset[str] = MISSING_LABELS,
) -> PreparedData:
    """Load, deduplicate, choose labels, subsample and split; raise a :class:`TrainingDataError` early."""
    if min_examples < 2:
        raise BuildError("min_examples must be at least 2 (one train and one eval row per label)")
    rows = load_labelled(data_path, text_column, label_column, missing_labels=missing_labels)
    if len(rows) < 2 * min_examples:
        raise TooFewExamplesError(
            f"{data_path.name}: {len(rows)} labelled rows, need at least {2 * min_examples} "
            f"(two labels x min_examples={min_examples})"
        )
    unique = dedupe(rows)
    labels = select_labels(unique.rows, top_labels, min_examples=min_examples)
    if len(labels) < 2:
        counts = label_counts(unique.rows)
        raise SingleClassError(
            f"{data_path.name}: {len(labels)} label(s) with at least {min_examples} distinct texts in column "
            f"{label_column!r} ({len(counts)} label value(s) in all); a classifier needs two or more"
        )
    mapped = apply_labels(unique.rows, labels)
    if max_rows is not None:
        mapped = stratified_sample(mapped, max_rows, seed)
    split = stratified_split(mapped, eval_fraction, seed)
    held = label_counts(split.eval)
    short = [label for label in labels if label not in held]
    if short:
        raise TooFewExamplesError(f"{data_path.name}: no eval rows for label(s) {short}; lower --top-labels")
    stats = {
        "rows_labelled": len(rows),
        "duplicates_dropped": unique.duplicates_dropped,
        "conflicting_texts": unique.conflicting_texts,
        "rows_used": len(mapped),
        "train": len(split.train),
        "eval": len(split.eval),
        "label_counts": {"train": label_counts(split.train), "eval": label_counts(split.eval)},
    }
    return PreparedData(labels, split, stats)


def build_probe_pack(
    name: str,
    data_path: Path,
    text_column: str,
    label_column: str,
    out_dir: Path,
    *,
    top_labels: int = 12,
    min_examples: int = 10,
    max_tokens: int = 128,
    eval_fraction: float = 0.2,
    max_rows: int | None = None,
    seed: int = 0,
    atol: float = 1e-3,
    min_int8_agreement: float | None = 0.97,
    missing_labels: frozenset[str] = MISSING_LABELS,
    batch_size: int = 32,
    progress: bool = True,
) -> PackManifest:
    """Build ``out_dir/name``: frozen MiniLM + mean pooling + linear head, fused fp32 and int8 variants."""
    started = time.perf_counter()
    if not 8 <= max_tokens <= 512:
        raise BuildError(f"max_tokens must be in [8, 512] (MiniLM has 512 positions), got {max_tokens}")
    if not 0.0 < eval_fraction < 1.0:
        raise BuildError(f"eval_fraction must be in (0, 1), got {eval_fraction}")
    check_name(name)
    check_writable(out_dir)
    # Heavy imports only once the cheap checks passed.
    from nightclerk.exporters.encoder import (
        SOURCE_CHECKPOINT,
        ProbeClassifier,
        SentenceEmbedder,
        encoder_shape,
        load_encoder,
        minilm_dir,
    )
    from nightclerk.exporters.metrics import classification_metrics
    from nightclerk.exporters.onnx_export import INPUT_NAMES
    from nightclerk.exporters.pack_writer import PackWriter, write_tokenizer
    from nightclerk.exporters.probe import choose_l2, embed, train_linear_head
    from nightclerk.exporters.tokens import encode, load_tokenizer
    from nightclerk.exporters.variants import build_variants

    model_dir = minilm_dir()
    data = prepare_data(
        data_path,
        text_column,
        label_column,
        top_labels=top_labels,
        min_examples=min_examples,
        eval_fraction=eval_fraction,
        max_rows=max_rows,
        seed=seed,
        missing_labels=missing_labels,
    )
    seconds: dict[str, float] = {"prepare": time.perf_counter() - started}
    log.info(
        "build_started",
        pack=name,
        labels=len(data.labels),
        train=len(data.split.train),
        eval=len(data.split.eval),
        max_tokens=max_tokens,
    )

    tokenizer = load_tokenizer(model_dir / TOKENIZER_FILE, max_tokens)
    embedder = SentenceEmbedder(load_encoder(model_dir)).eval()
    shape = encoder_shape(embedder.encoder)
    mark = time.perf_counter()
    train_enc = encode(tokenizer, [text for text, _ in data.split.train], max_tokens)
    eval_enc = encode(tokenizer, [text for text, _ in data.split.eval], max_tokens)
    x_train = embed(
        embedder, train_enc, batch_size=batch_size, progress=progress, description=f"{name} train"
    )
    seconds["embed"] = time.perf_counter() - mark

    mark = time.perf_counter()
    y_train, y_eval = _ids(data.split.train, data.labels), _ids(data.split.eval, data.labels)
    choice = choose_l2(x_train, y_train, len(data.labels), seed=seed)
    head = train_linear_head(x_train, y_train, len(data.labels), l2=choice.l2, seed=seed)
    module = ProbeClassifier(embedder, head).eval()
    seconds["fit_head"] = time.perf_counter() - mark

    with PackWriter(out_dir, name) as pack:
        built = build_variants(
            module,
            pack.dir,
            shape,
            eval_enc,
            atol=atol,
            min_int8_agreement=min_int8_agreement,
            batch_size=batch_size,
            seed=seed,
        )
        write_tokenizer(model_dir / TOKENIZER_FILE, pack.dir, max_tokens)
        seconds.update(built.seconds)
        seconds["total"] = time.perf_counter() - started
        logits = {"fp32": built.fp32.logits, "int8": built.int8.logits}
        metrics: dict[str, Any] = {
            "eval": {
                precision: classification_metrics(y_eval, logits[precision].argmax(axis=1), data.labels)
                for precision in ("fp32", "int8")
            },
            "parity": built.parity(atol=atol, min_int8_agreement=min_int8_agreement),
            "quantization": built.quantization,
            "fusion": built.fusion.as_metrics(),
            "data": data.stats,
            "probe": {"l2": choice.l2, "l2_search_macro_f1": choice.scores, "seed": seed},
            "ort_eval_docs_per_s": built.docs_per_s,
            "build_seconds": {key: round(value, 2) for key, value in seconds.items()},
        }
        manifest = pack.commit(
            labels=data.labels,
            max_tokens=max_tokens,
            inputs=list(INPUT_NAMES),
            variants=built.variants,
            opset=built.opset,
            source_checkpoint=SOURCE_CHECKPOINT,
            method=METHOD,
            data_sha256=sha256_file(data_path),
            metrics=metrics,
        )
    log.info(
        "pack_built",
        pack=name,
        version=manifest.version,
        seconds=round(seconds["total"], 1),
        fp32_macro_f1=metrics["eval"]["fp32"]["macro_f1"],
        int8_macro_f1=metrics["eval"]["int8"]["macro_f1"],
    )
    return manifest
