"""One torch classifier -> the pack's gated ONNX variants: fused fp32, int8 and fp16 of the fused graph.

The fp32 variant must match torch within ``atol``. For int8, recipes are tried fastest first and the first
whose top labels agree with fp32 on at least ``min_int8_agreement`` of the eval documents -- and, given the
eval labels, whose macro-F1 is at most ``max_int8_f1_drop`` below fp32's -- is kept:

- ``all``: dynamic, every MatMul and Attention int8 (fastest);
- ``all-7bit``: the same with 7-bit weights, which CPUs without VNNI multiply without saturating;
- ``ffn-down-fp32``: dynamic, the feed-forward down-projections stay fp32 (their post-GELU inputs quantize
  worst);
- ``ffn-down-fp32-7bit``: the same with 7-bit weights;
- ``weight-only-b128``: int8 weights with one scale per 128 (``MatMulNBits``), activations quantized per row
  and block inside the kernel: much closer to fp32, and batch independent; attention QKV stays fp32;
- ``ffn-fp32``: dynamic, both feed-forward projections stay fp32 (attention stays int8);
- ``ffn-fp32-7bit``: the same with 7-bit weights;
- ``weight-only-b32``: as ``weight-only-b128`` with a scale per 32 weights (the most accurate, slowest).

The order is fastest first, as measured on all-MiniLM-L6-v2 at 128 tokens on 2 CPU cores of an Intel CPU
with VNNI (ORT inference only: about 110, 82, 72, 65 and 65 docs/s for the 8-bit ones; fp32 57). A 7-bit
twin runs at its 8-bit recipe's speed. Whether 7 bits agree with fp32 more often depends on the model and
the CPU (measured at build, eval split): on an AMD EPYC with AVX2 and no VNNI, ``ticket-system`` went from
98.81 % (``all``) to 99.40 % (``all-7bit``, shipped) while ``ehr-specialty`` went from 97.99 to 97.42 %; on
a CPU with VNNI, 7 bits moved agreement by at most two eval documents. Dynamic recipes are
``batch_independent=False`` in the manifest; weight-only ones are ``True`` when their measured
sorted-vs-shuffled agreement is 1. (The worker's ``precision=auto`` times int8 against fp32 at load and
keeps the faster one, so a recipe slower than fp32 on the serving CPU costs only disk.)

If none passes, the last gate error (:class:`LabelAgreementError` or :class:`MacroF1DropError`) is raised
and no pack is written. The recipe used and the figures of every recipe tried are recorded in the manifest.

fp16 (``fp16=True``): see :mod:`nightclerk.exporters.fp16` -- gated on every provider that can run it here,
left out (and the reason recorded) when none can.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from nightclerk.exporters.encoder import EncoderShape
from nightclerk.exporters.errors import LabelAgreementError, MacroF1DropError
from nightclerk.exporters.fp16 import FP16_ATOL, FP16_FILE, MIN_FP16_AGREEMENT, Fp16Outcome, build_fp16
from nightclerk.exporters.onnx_export import OPSET, export_onnx
from nightclerk.exporters.optimize import (
    FusionReport,
    ffn_projections,
    fuse_transformer,
    quantize_int8,
    quantize_weight_only_int8,
)
from nightclerk.exporters.parity import Fp32Check, Int8Check, check_fp32, check_int8, parity_metrics
from nightclerk.exporters.tokens import Encoded
from nightclerk.shared.logging import get_logger
from nightclerk.shared.manifest import Variant

log = get_logger(__name__)
FP32_FILE = "model.fp32.onnx"
INT8_FILE = "model.int8.onnx"


@dataclass(frozen=True)
class Int8Recipe:
    name: str
    keep_fp32: Callable[[Path], list[str]]  # fused fp32 model -> node names to leave unquantized (dynamic)
    weight_only_block: int | None = None  # weight-only MatMulNBits with this block size instead of dynamic
    reduce_range: bool = False  # dynamic: 7-bit weights

    def quantize(self, src: Path, dst: Path) -> int:
        """Write the int8 file; return how many nodes were kept in fp32 (dynamic recipes)."""
        if self.weight_only_block is not None:
            quantize_weight_only_int8(src, dst, block_size=self.weight_only_block)
            return 0
        keep = self.keep_fp32(src)
        quantize_int8(src, dst, exclude=keep, reduce_range=self.reduce_range)
        return len(keep)


def _ffn_down(path: Path) -> list[str]:
    return ffn_projections(path, up=False)


INT8_RECIPES = (
    Int8Recipe("all", lambda _: []),
    Int8Recipe("all-7bit", lambda _: [], reduce_range=True),
    Int8Recipe("ffn-down-fp32", _ffn_down),
    Int8Recipe("ffn-down-fp32-7bit", _ffn_down, reduce_range=True),
    Int8Recipe("weight-only-b128", lambda _: [], weight_only_block=128),
    Int8Recipe("ffn-fp32", ffn_projections),
    Int8Recipe("ffn-fp32-7bit", ffn_projections, reduce_range=True),
    Int8Recipe("weight-only-b32", lambda _: [], weight_only_block=32),
)


@dataclass(frozen=True)
class GatedVariants:
    fp32: Fp32Check
    int8: Int8Check
    fusion: FusionReport
    opset: int
    quantization: dict[str, Any]
    seconds: dict[str, float] = field(default_factory=dict)
    fp16: Fp16Outcome | None = None  # None: not attempted

    @property
    def variants(self) -> list[Variant]:
        found = [
            Variant(
                precision="int8",
                file=INT8_FILE,
                batch_independent=bool(self.quantization.get("weight_only"))
                and self.int8.batch_agreement == 1.0,
                device="cpu",
                recipe=str(self.quantization.get("recipe")) if self.quantization.get("recipe") else None,
            ),
        ]
        if self.fp16 is not None and self.fp16.shipped:
            found.append(Variant(precision="fp16", file=FP16_FILE, batch_independent=True, device="cuda"))
        found.append(Variant(precision="fp32", file=FP32_FILE, batch_independent=True, device="any"))
        return found

    def parity(
        self, *, atol: float, min_int8_agreement: float | None, max_int8_f1_drop: float | None = None
    ) -> dict[str, Any]:
        return parity_metrics(
            self.fp32, self.int8, atol=atol, min_agreement=min_int8_agreement, max_f1_drop=max_int8_f1_drop
        )

    def logits(self) -> dict[str, np.ndarray]:
        """Eval logits per shipped variant (fp16: from the GPU when it was gated there, else the CPU)."""
        out = {"fp32": self.fp32.logits, "int8": self.int8.logits}
        if self.fp16 is not None and self.fp16.shipped:
            checks = self.fp16.checks
            out["fp16"] = (checks.get("CUDAExecutionProvider") or next(iter(checks.values()))).logits
        return out

    @property
    def docs_per_s(self) -> dict[str, float]:
        return {"fp32": self.fp32.docs_per_s, "int8": self.int8.docs_per_s}


def build_variants(
    module: nn.Module,
    pack_dir: Path,
    shape: EncoderShape,
    encoded: Encoded,
    *,
    atol: float = 1e-3,
    min_int8_agreement: float | None = 0.99,
    y_true: np.ndarray | None = None,
    max_int8_f1_drop: float | None = 0.01,
    fp16: bool = False,
    fp16_atol: float = FP16_ATOL,
    min_fp16_agreement: float = MIN_FP16_AGREEMENT,
    require_fusion: bool = True,
    recipes: tuple[Int8Recipe, ...] = INT8_RECIPES,
    batch_size: int = 32,
    seed: int = 0,
    threads: int = 0,
    opset: int = OPSET,
) -> GatedVariants:
    """Write ``model.fp32.onnx``, ``model.int8.onnx`` (and ``model.fp16.onnx``) into ``pack_dir``, each past
    its parity gate. ``y_true`` (eval label ids) turns on the int8 macro-F1 gate.

    The unfused export goes to a scratch folder, so the pack holds only the files the manifest names.
    """
    if not recipes:
        raise ValueError("at least one int8 recipe is needed")
    seconds: dict[str, float] = {}
    mark = time.perf_counter()
    fp32_path, int8_path = pack_dir / FP32_FILE, pack_dir / INT8_FILE
    with tempfile.TemporaryDirectory(prefix="nightclerk-export-") as scratch:
        raw = export_onnx(module, Path(scratch) / "model.raw.onnx", opset=opset)
        seconds["export"] = time.perf_counter() - mark
        mark = time.perf_counter()
        fusion = fuse_transformer(
            raw,
            fp32_path,
            num_heads=shape.num_heads,
            hidden_size=shape.hidden_size,
            expect_layers=shape.num_layers if require_fusion else None,
        )
        seconds["fuse"] = time.perf_counter() - mark
    mark = time.perf_counter()
    fp32 = check_fp32(module, fp32_path, encoded, atol=atol, batch_size=batch_size, threads=threads)
    seconds["parity_fp32"] = time.perf_counter() - mark

    fp16_outcome = None
    if fp16:
        mark = time.perf_counter()
        fp16_outcome = build_fp16(
            fp32.reference,
            fp32_path,
            pack_dir / FP16_FILE,
            encoded,
            atol=fp16_atol,
            min_agreement=min_fp16_agreement,
            batch_size=batch_size,
            threads=threads,
        )
        seconds["fp16"] = time.perf_counter() - mark

    tried: dict[str, Any] = {}
    failure: LabelAgreementError | MacroF1DropError | None = None
    for recipe in recipes:
        mark = time.perf_counter()
        kept = recipe.quantize(fp32_path, int8_path)
        try:
            int8 = check_int8(
                fp32.logits,
                int8_path,
                encoded,
                min_agreement=min_int8_agreement,
                y_true=y_true,
                max_f1_drop=max_int8_f1_drop,
                batch_size=batch_size,
                seed=seed,
                threads=threads,
            )
        except (LabelAgreementError, MacroF1DropError) as exc:
            tried[recipe.name] = {"rejected_by": exc.gate, "value": round(exc.value, 4)}
            failure = exc
            log.warning(
                "int8_recipe_rejected",
                recipe=recipe.name,
                gate=exc.gate,
                value=round(exc.value, 4),
                limit=exc.limit,
            )
            continue
        finally:
            seconds[f"int8_{recipe.name}"] = time.perf_counter() - mark
        tried[recipe.name] = {"label_agreement": round(int8.label_agreement, 4)}
        if int8.macro_f1_drop is not None:
            tried[recipe.name]["macro_f1_drop"] = round(int8.macro_f1_drop, 4)
        quantization = {
            "recipe": recipe.name,
            "weight_only": recipe.weight_only_block is not None,
            "weight_bits": 7 if recipe.reduce_range else 8,
            "kept_fp32_nodes": kept,
            "by_recipe": tried,
        }
        return GatedVariants(
            fp32,
            int8,
            fusion,
            opset,
            quantization,
            {k: round(v, 2) for k, v in seconds.items()},
            fp16_outcome,
        )
    int8_path.unlink(missing_ok=True)
    (pack_dir / FP16_FILE).unlink(missing_ok=True)
    raise failure  # type: ignore[misc]  # set: recipes is not empty
