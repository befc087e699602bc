"""One torch classifier -> the pack's gated ONNX variants: fused fp32, and int8 of the fused graph.

The fp32 variant must match torch within ``atol``. For int8, recipes are tried fastest first and the first
whose top labels agree with fp32 on at least ``min_int8_agreement`` of the eval documents is kept:

- ``all``: every MatMul and Attention int8 (fastest);
- ``ffn-down-fp32``: the feed-forward down-projections stay fp32 (their post-GELU inputs quantize worst);
- ``ffn-fp32``: both feed-forward projections stay fp32 (attention stays int8).

If none passes, the last :class:`LabelAgreementError` is raised and no pack is written. The recipe used and
the agreement of every recipe tried are recorded in the manifest.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from nightclerk.exporters.encoder import EncoderShape
from nightclerk.exporters.errors import LabelAgreementError
from nightclerk.exporters.onnx_export import OPSET, export_onnx
from nightclerk.exporters.optimize import FusionReport, ffn_projections, fuse_transformer, quantize_int8
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
    keep_fp32: Callable[[Path], list[str]]  # fused fp32 model -> node names to leave unquantized


INT8_RECIPES = (
    Int8Recipe("all", lambda _: []),
    Int8Recipe("ffn-down-fp32", lambda path: ffn_projections(path, up=False)),
    Int8Recipe("ffn-fp32", ffn_projections),
)


@dataclass(frozen=True)
class GatedVariants:
    fp32: Fp32Check
    int8: Int8Check
    fusion: FusionReport
    opset: int
    quantization: dict[str, Any]
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def variants(self) -> list[Variant]:
        return [
            Variant(
                precision="int8",
                file=INT8_FILE,
                batch_independent=False,
                device="cpu",
                recipe=str(self.quantization.get("recipe")) if self.quantization.get("recipe") else None,
            ),
            Variant(precision="fp32", file=FP32_FILE, batch_independent=True, device="any"),
        ]

    def parity(self, *, atol: float, min_int8_agreement: float | None) -> dict[str, Any]:
        return parity_metrics(self.fp32, self.int8, atol=atol, min_agreement=min_int8_agreement)

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
    min_int8_agreement: float | None = 0.97,
    require_fusion: bool = True,
    recipes: tuple[Int8Recipe, ...] = INT8_RECIPES,
    batch_size: int = 32,
    seed: int = 0,
    threads: int = 0,
    opset: int = OPSET,
) -> GatedVariants:
    """Write ``model.fp32.onnx`` and ``model.int8.onnx`` into ``pack_dir``, each past its parity gate.

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

    tried: dict[str, float] = {}
    failure: LabelAgreementError | None = None
    for recipe in recipes:
        mark = time.perf_counter()
        keep = recipe.keep_fp32(fp32_path)
        quantize_int8(fp32_path, int8_path, exclude=keep)
        try:
            int8 = check_int8(fp32.logits, int8_path, encoded, min_agreement=min_int8_agreement,
                              batch_size=batch_size, seed=seed, threads=threads)  # fmt: skip
        except LabelAgreementError as exc:
            tried[recipe.name] = round(exc.value, 4)
            failure = exc
            log.warning("int8_recipe_rejected", recipe=recipe.name, agreement=round(exc.value, 4),
                        minimum=min_int8_agreement)  # fmt: skip
            continue
        finally:
            seconds[f"int8_{recipe.name}"] = time.perf_counter() - mark
        tried[recipe.name] = round(int8.label_agreement, 4)
        quantization = {"recipe": recipe.name, "kept_fp32_nodes": len(keep), "agreement_by_recipe": tried}
        return GatedVariants(fp32, int8, fusion, opset, quantization,
                             {k: round(v, 2) for k, v in seconds.items()})  # fmt: skip
    int8_path.unlink(missing_ok=True)
    raise failure  # type: ignore[misc]  # set: recipes is not empty
