"""Gates between the torch module and its ONNX variants, run on held-out texts before a pack is written.

- fp32 ONNX vs torch: maximum absolute logit difference <= ``atol`` (:class:`AtolError`).
- int8 vs fp32: share of documents with the same top label >= ``min_agreement``
  (:class:`LabelAgreementError`); ``None`` records the figure without gating.
- int8 vs fp32 macro-F1 on the eval labels: at most ``max_f1_drop`` lower (:class:`MacroF1DropError`).
- fp16 vs torch: logit tolerance and label agreement (see :mod:`nightclerk.exporters.fp16`).
- int8 batch composition: top labels with length-sorted batches (as the worker plans them) vs the same
  documents in shuffled batches. Dynamic quantization scales activations per batch, so this is below 1 in
  general; it is recorded, not gated.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from torch import nn

from nightclerk.exporters.errors import AtolError, LabelAgreementError, MacroF1DropError
from nightclerk.exporters.metrics import label_agreement, macro_f1
from nightclerk.exporters.tokens import Encoded, padded_batches


@dataclass(frozen=True)
class Fp32Check:
    reference: np.ndarray  # torch logits (n_docs, n_labels)
    logits: np.ndarray  # fp32 ONNX logits, sorted batching
    max_abs_diff: float
    label_agreement: float
    docs_per_s: float  # ONNX inference only


@dataclass(frozen=True)
class Int8Check:
    logits: np.ndarray  # int8 logits, sorted batching
    label_agreement: float  # vs fp32 ONNX
    max_abs_diff: float  # vs fp32 ONNX
    batch_agreement: float  # sorted vs shuffled batches
    docs_per_s: float
    macro_f1_drop: float | None = None  # fp32 minus int8 macro-F1 on the eval labels, when given


def open_session(path: Path, threads: int = 0, providers: list[str] | None = None) -> ort.InferenceSession:
    """A session (CPU unless ``providers`` say otherwise), warmed up on one short input so first-run
    allocations stay out of timings."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    session = ort.InferenceSession(
        str(path), sess_options=options, providers=providers or ["CPUExecutionProvider"]
    )
    warm = np.full((1, 8), 1000, dtype=np.int64)
    feeds = {"input_ids": warm, "attention_mask": np.ones_like(warm)}
    if "token_type_ids" in {node.name for node in session.get_inputs()}:
        feeds["token_type_ids"] = np.zeros_like(warm)
    session.run(None, feeds)
    return session


def torch_logits(module: nn.Module, encoded: Encoded, *, batch_size: int = 32) -> np.ndarray:
    out: dict[int, np.ndarray] = {}
    with torch.inference_mode():
        for indices, ids, mask in padded_batches(encoded, batch_size):
            logits = module(torch.from_numpy(ids), torch.from_numpy(mask)).numpy()
            out.update(zip(indices, logits, strict=True))
    return np.stack([out[i] for i in range(len(encoded))])


def onnx_logits(
    session: ort.InferenceSession, encoded: Encoded, *, batch_size: int = 32, shuffle_seed: int | None = None
) -> tuple[np.ndarray, float]:
    """Logits in input order, and the seconds spent in ``session.run``."""
    wants = {node.name for node in session.get_inputs()}
    out: dict[int, np.ndarray] = {}
    spent = 0.0
    for indices, ids, mask in padded_batches(encoded, batch_size, shuffle_seed=shuffle_seed):
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in wants:
            feeds["token_type_ids"] = np.zeros_like(ids)
        started = time.perf_counter()
        (logits,) = session.run(["logits"], feeds)
        spent += time.perf_counter() - started
        out.update(zip(indices, np.asarray(logits, dtype=np.float32), strict=True))
    return np.stack([out[i] for i in range(len(encoded))]), spent


def check_atol(reference: np.ndarray, candidate: np.ndarray, *, atol: float, what: str) -> float:
    diff = float(np.max(np.abs(reference - candidate))) if reference.size else 0.0
    if not diff <= atol:  # also catches NaN
        detail = (
            f"{what}: max |logit difference| {diff:.3g} > atol {atol:g} over {reference.shape[0]} documents"
        )
        raise AtolError(what, diff, atol, detail)
    return diff


def check_agreement(
    reference: np.ndarray, candidate: np.ndarray, *, minimum: float | None, what: str
) -> float:
    agreement = label_agreement(reference, candidate)
    if minimum is not None and agreement < minimum:
        detail = (
            f"{what}: top labels agree on {agreement:.2%} of {reference.shape[0]} documents, "
            f"the minimum is {minimum:.2%}"
        )
        raise LabelAgreementError(what, agreement, minimum, detail)
    return agreement


def check_macro_f1_drop(
    y_true: np.ndarray, reference: np.ndarray, candidate: np.ndarray, *, max_drop: float | None, what: str
) -> float:
    """Reference minus candidate macro-F1 (positive: the candidate is worse); gated by ``max_drop``."""
    n_labels = reference.shape[1]
    drop = macro_f1(y_true, reference.argmax(axis=1), n_labels) - macro_f1(
        y_true, candidate.argmax(axis=1), n_labels
    )
    if max_drop is not None and drop > max_drop + 1e-12:
        detail = (
            f"{what}: macro-F1 is {drop * 100:.2f} points below fp32 over {len(y_true)} documents, "
            f"the allowed drop is {max_drop * 100:.2f}"
        )
        raise MacroF1DropError(what, drop, max_drop, detail)
    return drop


def _rate(n: int, seconds: float) -> float:
    return round(n / seconds, 1) if seconds > 0 else 0.0


def check_fp32(
    module: nn.Module,
    fp32_path: Path,
    encoded: Encoded,
    *,
    atol: float = 1e-3,
    batch_size: int = 32,
    threads: int = 0,
) -> Fp32Check:
    """torch vs fp32 ONNX logits on the same batches; :class:`AtolError` above ``atol``."""
    reference = torch_logits(module, encoded, batch_size=batch_size)
    logits, seconds = onnx_logits(open_session(fp32_path, threads), encoded, batch_size=batch_size)
    diff = check_atol(reference, logits, atol=atol, what="fp32-vs-torch")
    return Fp32Check(
        reference, logits, diff, label_agreement(reference, logits), _rate(len(encoded), seconds)
    )


def check_int8(
    fp32_logits: np.ndarray,
    int8_path: Path,
    encoded: Encoded,
    *,
    min_agreement: float | None = 0.99,
    y_true: np.ndarray | None = None,
    max_f1_drop: float | None = None,
    batch_size: int = 32,
    seed: int = 0,
    threads: int = 0,
) -> Int8Check:
    """int8 vs fp32 top labels and, with ``y_true``, macro-F1 (gated); sorted vs shuffled batching
    (recorded)."""
    session = open_session(int8_path, threads)
    logits, seconds = onnx_logits(session, encoded, batch_size=batch_size)
    agreement = check_agreement(fp32_logits, logits, minimum=min_agreement, what="int8-vs-fp32")
    drop = None
    if y_true is not None:
        drop = check_macro_f1_drop(y_true, fp32_logits, logits, max_drop=max_f1_drop, what="int8-macro-f1")
    shuffled, _ = onnx_logits(session, encoded, batch_size=batch_size, shuffle_seed=seed + 1)
    diff = float(np.max(np.abs(fp32_logits - logits))) if logits.size else 0.0
    return Int8Check(
        logits, agreement, diff, label_agreement(logits, shuffled), _rate(len(encoded), seconds), drop
    )


def parity_metrics(
    fp32: Fp32Check,
    int8: Int8Check,
    *,
    atol: float,
    min_agreement: float | None,
    max_f1_drop: float | None = None,
) -> dict[str, float | int | None]:
    """The figures a manifest records."""
    return {
        "n_docs": int(fp32.logits.shape[0]),
        "atol": atol,
        "fp32_max_abs_diff": round(fp32.max_abs_diff, 8),
        "fp32_label_agreement": round(fp32.label_agreement, 4),
        "min_int8_agreement": min_agreement,
        "max_int8_macro_f1_drop": max_f1_drop,
        "int8_label_agreement": round(int8.label_agreement, 4),
        "int8_max_abs_diff": round(int8.max_abs_diff, 6),
        "int8_batch_agreement": round(int8.batch_agreement, 4),
        "int8_macro_f1_drop": None if int8.macro_f1_drop is None else round(int8.macro_f1_drop, 4),
    }
