"""The fp16 variant (for GPUs): the fused fp32 graph converted to float16, gated against the torch model.

Conversion is onnxruntime's own (``OnnxModel.convert_float_to_float16``, ``keep_io_types=True``): weights
and activations become float16, the int64 inputs stay int64 and ``logits`` stays float32, so the worker feeds
and reads it as it does the other variants.

Gate, against the torch logits on the eval split: max |logit difference| <= ``atol`` (:class:`AtolError`)
and the share of identical top labels >= ``min_agreement`` (:class:`LabelAgreementError`), on every
execution provider that can run it here:

- ``CPUExecutionProvider`` always, when it runs the file. It has few float16 kernels and inserts Casts
  around the others, so this checks the float16 weights and the float16 tensors between nodes, not the
  float16 arithmetic of a GPU.
- ``CUDAExecutionProvider`` when a GPU is visible (``/proc/driver/nvidia/gpus``) and onnxruntime has the
  provider: the arithmetic the worker will run.

If no provider could run the file, it is deleted and the manifest says why; an ungated fp16 file is never
shipped. A provider that runs it and fails the gate fails the build.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from nightclerk.exporters.errors import ExportError, ParityError
from nightclerk.exporters.hardware import CPU_PROVIDERS, cuda_providers
from nightclerk.exporters.optimize import _quiet
from nightclerk.exporters.parity import check_agreement, check_atol, onnx_logits, open_session
from nightclerk.exporters.tokens import Encoded
from nightclerk.shared.logging import get_logger

log = get_logger(__name__)
FP16_FILE = "model.fp16.onnx"
FP16_ATOL = 5e-2
MIN_FP16_AGREEMENT = 0.99


@dataclass(frozen=True)
class Fp16Check:
    provider: str
    logits: np.ndarray
    max_abs_diff: float  # vs torch fp32
    label_agreement: float  # vs torch fp32
    docs_per_s: float


@dataclass(frozen=True)
class Fp16Outcome:
    shipped: bool
    checks: dict[str, Fp16Check] = field(default_factory=dict)  # provider -> gate figures
    unsupported: dict[str, str] = field(default_factory=dict)  # provider -> why it could not run the file
    reason: str | None = None  # why no fp16 file was shipped

    def as_metrics(self, *, atol: float, min_agreement: float) -> dict[str, Any]:
        return {
            "shipped": self.shipped,
            "reason": self.reason,
            "atol": atol,
            "min_label_agreement": min_agreement,
            "gated_on": {
                provider: {
                    "max_abs_diff": round(check.max_abs_diff, 6),
                    "label_agreement": round(check.label_agreement, 4),
                    "docs_per_s": check.docs_per_s,
                }
                for provider, check in self.checks.items()
            },
            "not_run_on": dict(self.unsupported),
        }


def convert_fp16(src: Path, dst: Path, *, keep_io_types: bool | list[str] = True) -> Path:
    """Float16 copy of a (fused) fp32 ONNX file.

    ``keep_io_types``: True keeps every float32 input and output (a classifier's); a list keeps only those
    names float32 (a decoder keeps its logits, and takes and returns its key/value cache in float16).
    """
    from onnxruntime.transformers.onnx_model import OnnxModel

    try:
        with _quiet():
            model = OnnxModel(onnx.load(str(src)))
            model.convert_float_to_float16(keep_io_types=keep_io_types)
            model.save_model_to_file(str(dst))
    except Exception as exc:
        raise ExportError(f"fp16 conversion of {src.name} failed: {type(exc).__name__}: {exc}") from exc
    return dst


def float16_initializers(path: Path) -> int:
    """How many of the graph's initializers are float16 (a converted file has most of its weights so)."""
    graph = onnx.load(str(path), load_external_data=False).graph
    return sum(1 for tensor in graph.initializer if tensor.data_type == onnx.TensorProto.FLOAT16)


def check_fp16(
    reference: np.ndarray,
    path: Path,
    encoded: Encoded,
    *,
    providers: list[str],
    atol: float = FP16_ATOL,
    min_agreement: float = MIN_FP16_AGREEMENT,
    batch_size: int = 32,
    threads: int = 0,
) -> Fp16Check:
    """Run the fp16 file on ``providers`` and gate it against the torch logits.

    Raises whatever onnxruntime raises when the provider cannot run the file, and :class:`AtolError` or
    :class:`LabelAgreementError` when it runs but fails the gate.
    """
    session = open_session(path, threads, providers)
    provider = session.get_providers()[0]
    if provider != providers[0]:
        raise RuntimeError(f"{providers[0]} was requested but the session runs on {provider}")
    logits, seconds = onnx_logits(session, encoded, batch_size=batch_size)
    what = f"fp16-vs-torch[{provider}]"
    diff = check_atol(reference, logits, atol=atol, what=what)
    agreement = check_agreement(reference, logits, minimum=min_agreement, what=what)
    rate = round(len(encoded) / seconds, 1) if seconds > 0 else 0.0
    log.info("fp16_gated", provider=provider, max_abs_diff=round(diff, 5), agreement=round(agreement, 4))
    return Fp16Check(provider, logits, diff, agreement, rate)


def build_fp16(
    reference: np.ndarray,
    fp32_path: Path,
    dst: Path,
    encoded: Encoded,
    *,
    atol: float = FP16_ATOL,
    min_agreement: float = MIN_FP16_AGREEMENT,
    batch_size: int = 32,
    threads: int = 0,
    gpu_providers: list[str] | None = None,
) -> Fp16Outcome:
    """Convert, gate on the CPU and (when there) on CUDA; keep ``dst`` only if at least one gate ran.

    ``gpu_providers`` defaults to CUDA when a GPU and the CUDA provider are present.
    """
    convert_fp16(fp32_path, dst)
    candidates: list[list[str]] = [CPU_PROVIDERS]
    gpu = gpu_providers if gpu_providers is not None else cuda_providers()
    if gpu:
        candidates.append(gpu)
    else:
        log.info("fp16_no_gpu", detail="no GPU with onnxruntime's CUDA provider here: gating fp16 on the CPU")
    checks: dict[str, Fp16Check] = {}
    unsupported: dict[str, str] = {}
    for providers in candidates:
        started = time.perf_counter()
        try:
            check = check_fp16(
                reference,
                dst,
                encoded,
                providers=providers,
                atol=atol,
                min_agreement=min_agreement,
                batch_size=batch_size,
                threads=threads,
            )
        except ParityError:  # it ran and failed the gate: the build fails
            dst.unlink(missing_ok=True)
            raise
        except Exception as exc:  # onnxruntime's own types: this provider cannot run the file
            unsupported[providers[0]] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"
            log.warning("fp16_provider_cannot_run", provider=providers[0], error=unsupported[providers[0]])
            continue
        checks[check.provider] = check
        log.info("fp16_gate_passed", provider=check.provider, seconds=round(time.perf_counter() - started, 1))
    if not checks:
        dst.unlink(missing_ok=True)
        reason = "no execution provider here could run the fp16 file to gate it: " + "; ".join(
            f"{name}: {why}" for name, why in unsupported.items()
        )
        return Fp16Outcome(False, checks, unsupported, reason)
    return Fp16Outcome(True, checks, unsupported)
