"""From a trained module to a committed pack: gated variants, eval metrics, baseline, throughput, manifest.

Everything is written into the pack's staging folder; a gate that fails raises before the commit, so the
packs folder is left as it was.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from nightclerk.exporters.checkpoint import Checkpoint
from nightclerk.exporters.hardware import CPU_PROVIDERS, cpu_count, cuda_providers
from nightclerk.exporters.metrics import classification_metrics
from nightclerk.exporters.onnx_export import INPUT_NAMES
from nightclerk.exporters.pack_writer import PackWriter, write_tokenizer
from nightclerk.exporters.throughput import docs_per_s
from nightclerk.exporters.tokens import load_tokenizer
from nightclerk.exporters.training import Trained
from nightclerk.exporters.variants import GatedVariants, build_variants
from nightclerk.shared.logging import get_logger
from nightclerk.shared.manifest import TOKENIZER_FILE, PackManifest

if TYPE_CHECKING:
    from pathlib import Path

    from nightclerk.exporters.build import PreparedData

log = get_logger(__name__)


def _throughput(pack_dir: Path, built: GatedVariants, texts: list[str], max_tokens: int) -> dict[str, Any]:
    """docs/s per shipped variant on the eval texts, tokenization included, on the CPU (and CUDA)."""
    tokenizer = load_tokenizer(pack_dir / TOKENIZER_FILE, max_tokens)
    out: dict[str, Any] = {"docs": len(texts), "max_tokens": max_tokens, "cpu_threads": cpu_count()}
    out["cpu"] = {
        v.precision: docs_per_s(pack_dir / v.file, tokenizer, texts, max_tokens, providers=CPU_PROVIDERS)
        for v in built.variants
    }
    gpu = cuda_providers()
    if gpu:
        out["cuda"] = {
            v.precision: docs_per_s(pack_dir / v.file, tokenizer, texts, max_tokens, providers=gpu)
            for v in built.variants
            if v.device != "cpu"
        }
    return out


def _margin(figures: dict[str, Any], baseline: dict[str, Any] | None) -> dict[str, float] | None:
    if baseline is None:
        return None
    base = baseline["eval"]["macro_f1"]
    return {precision: round(f["macro_f1"] - base, 4) for precision, f in figures.items()}


def finish_pack(
    name: str,
    out_dir: Path,
    checkpoint: Checkpoint,
    data: PreparedData,
    trained: Trained,
    *,
    method: str,
    data_sha256: str,
    max_tokens: int,
    seed: int,
    atol: float,
    min_int8_agreement: float | None,
    max_int8_f1_drop: float | None,
    fp16: bool,
    fp16_atol: float,
    min_fp16_agreement: float,
    baseline: bool,
    batch_size: int,
    seconds: dict[str, float],
    started: float,
) -> PackManifest:
    labels = data.labels
    eval_texts = [text for text, _ in data.split.eval]
    with PackWriter(out_dir, name) as pack:
        built = build_variants(
            trained.module,
            pack.dir,
            trained.shape,
            trained.eval_enc,
            atol=atol,
            min_int8_agreement=min_int8_agreement,
            y_true=trained.y_eval,
            max_int8_f1_drop=max_int8_f1_drop,
            fp16=fp16,
            fp16_atol=fp16_atol,
            min_fp16_agreement=min_fp16_agreement,
            batch_size=batch_size,
            seed=seed,
        )
        write_tokenizer(checkpoint.path / TOKENIZER_FILE, pack.dir, max_tokens)
        seconds.update(built.seconds)
        figures = {
            precision: classification_metrics(trained.y_eval, logits.argmax(axis=1), labels)
            for precision, logits in built.logits().items()
        }
        base = None
        if baseline:
            from nightclerk.exporters.baseline import tfidf_baseline

            mark = time.perf_counter()
            result = tfidf_baseline(
                [text for text, _ in data.split.train],
                trained.y_train,
                eval_texts,
                trained.y_eval,
                labels,
                max_words=max_tokens,
                val_indices=trained.val_indices,
                seed=seed,
            )
            base = result.as_metrics()
            seconds["baseline"] = time.perf_counter() - mark
        mark = time.perf_counter()
        throughput = _throughput(pack.dir, built, eval_texts, max_tokens)
        seconds["throughput"] = time.perf_counter() - mark
        seconds["total"] = time.perf_counter() - started
        parity = built.parity(
            atol=atol, min_int8_agreement=min_int8_agreement, max_int8_f1_drop=max_int8_f1_drop
        )
        metrics: dict[str, Any] = {
            "eval": figures,
            "baseline": base,
            "margin_over_baseline": _margin(figures, base),
            "parity": parity,
            "fp16": built.fp16.as_metrics(atol=fp16_atol, min_agreement=min_fp16_agreement)
            if built.fp16 is not None
            else {"shipped": False, "reason": "not requested"},
            "quantization": built.quantization,
            "fusion": built.fusion.as_metrics(),
            "data": {
                **data.stats,
                "val": len(trained.val_indices),
                "fit": len(trained.y_train) - len(trained.val_indices),
            },
            **trained.metrics,
            "device": {
                "train": trained.device,
                "parity": "cpu",
                "fp16_gate": sorted(built.fp16.checks) if built.fp16 is not None else [],
            },
            "docs_per_s": throughput,
            "ort_eval_docs_per_s": built.docs_per_s,
            "build_seconds": {key: round(value, 2) for key, value in seconds.items()},
        }
        manifest = pack.commit(
            labels=labels,
            max_tokens=max_tokens,
            inputs=list(INPUT_NAMES),
            variants=built.variants,
            opset=built.opset,
            source_checkpoint=checkpoint.source,
            method=method,
            data_sha256=data_sha256,
            metrics=metrics,
        )
    log.info(
        "pack_built",
        pack=name,
        version=manifest.version,
        seconds=round(seconds["total"], 1),
        **{f"{p}_macro_f1": f["macro_f1"] for p, f in figures.items()},
        baseline_macro_f1=base["eval"]["macro_f1"] if base else None,
    )
    return manifest
