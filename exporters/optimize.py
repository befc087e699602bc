"""onnxruntime's transformer fusion and dynamic int8 quantization, with a check that fusion happened.

Fusion replaces each layer's attention subgraph with one ``Attention`` node and each residual + LayerNorm
with ``SkipLayerNormalization`` (two per layer). Quantization is dynamic (weights int8 per output channel,
activation scales computed per batch) -- so an int8 document's scores depend on its batch neighbours.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import onnx

from nightclerk.exporters.errors import ExportError, FusionError
from nightclerk.shared.logging import get_logger

log = get_logger(__name__)
_GELU_OPS = frozenset({"Gelu", "BiasGelu", "FastGelu", "GemmFastGelu"})


@dataclass(frozen=True)
class FusionReport:
    attention: int
    skip_layer_norm: int
    fused: dict[str, int] = field(default_factory=dict)  # optimizer's statistics, non-zero entries only

    def as_metrics(self) -> dict[str, int]:
        return dict(self.fused)


def op_counts(path: Path) -> Counter[str]:
    """Node op types in an ONNX file's main graph."""
    return Counter(node.op_type for node in onnx.load(str(path), load_external_data=False).graph.node)


class _DropPreprocessHint(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "pre-processing before quantization" not in record.getMessage()


@contextmanager
def _quiet() -> Iterator[None]:
    """Silence onnxruntime's per-node INFO lines (and its pre-processing hint) for the duration."""
    previous = logging.root.manager.disable
    hint = _DropPreprocessHint()
    logging.disable(logging.INFO)
    logging.root.addFilter(hint)
    try:
        yield
    finally:
        logging.root.removeFilter(hint)
        logging.disable(previous)


def fuse_transformer(
    src: Path, dst: Path, *, num_heads: int, hidden_size: int, expect_layers: int | None = None
) -> FusionReport:
    """Run the BERT fusions; with ``expect_layers``, raise :class:`FusionError` unless every layer fused."""
    from onnxruntime.transformers.optimizer import optimize_model

    try:
        with _quiet():
            model = optimize_model(str(src), model_type="bert", num_heads=num_heads, hidden_size=hidden_size)
            stats = {name: int(n) for name, n in model.get_fused_operator_statistics().items() if n}
            model.save_model_to_file(str(dst))
    except Exception as exc:
        raise ExportError(f"transformer fusion of {src.name} failed: {type(exc).__name__}: {exc}") from exc
    counts = op_counts(dst)
    report = FusionReport(counts["Attention"], counts["SkipLayerNormalization"], stats)
    log.info(
        "onnx_fused",
        file=dst.name,
        attention=report.attention,
        skip_layer_norm=report.skip_layer_norm,
        fused=stats,
    )
    if expect_layers is not None and (
        report.attention < expect_layers or report.skip_layer_norm < 2 * expect_layers
    ):
        raise FusionError(
            f"{dst.name}: {report.attention} Attention and {report.skip_layer_norm} SkipLayerNormalization "
            f"nodes, expected {expect_layers} and {2 * expect_layers} (was the encoder loaded with "
            'attn_implementation="eager" and exported with dynamo=False?)'
        )
    return report


def ffn_projections(path: Path, *, up: bool = True, down: bool = True) -> list[str]:
    """Names of each layer's feed-forward MatMuls: ``up`` feeds a GELU, ``down`` is fed by one.

    The down-projection's input (post-GELU, long-tailed) quantizes worst under one dynamic scale per batch;
    keeping these MatMuls in fp32 is the cheapest way to raise int8-vs-fp32 agreement.
    """
    graph = onnx.load(str(path), load_external_data=False).graph
    gelus = [node for node in graph.node if node.op_type in _GELU_OPS]
    gelu_inputs = {name for node in gelus for name in node.input}
    gelu_outputs = {name for node in gelus for name in node.output}
    names = []
    for node in graph.node:
        if node.op_type != "MatMul":
            continue
        if (up and node.output[0] in gelu_inputs) or (down and node.input[0] in gelu_outputs):
            names.append(node.name)
    return names


def quantize_int8(src: Path, dst: Path, *, exclude: Sequence[str] = (), reduce_range: bool = False) -> Path:
    """Dynamic int8 quantization, per-channel QInt8 weights; works on a fused model.

    ``exclude`` names nodes to keep in fp32. ``reduce_range`` quantizes the weights to 7 bits: a CPU without
    VNNI multiplies u8 activations by s8 weights with ``vpmaddubsw``, whose int16 sums of pairs saturate
    at full range (255 x 127 x 2 > 32,767) and no longer do at 7 bits (onnxruntime's advice for such CPUs).
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    try:
        with _quiet():
            quantize_dynamic(
                model_input=str(src),
                model_output=str(dst),
                per_channel=True,
                weight_type=QuantType.QInt8,
                nodes_to_exclude=list(exclude),
                reduce_range=reduce_range,
                # fused models carry com.microsoft ops whose output types the quantizer cannot infer
                extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
            )
    except Exception as exc:
        raise ExportError(f"int8 quantization of {src.name} failed: {type(exc).__name__}: {exc}") from exc
    counts = op_counts(dst)
    log.info(
        "onnx_quantized",
        file=dst.name,
        matmul_integer=counts["MatMulInteger"],
        dynamic_quantize_linear=counts["DynamicQuantizeLinear"],
        qattention=counts["QAttention"],
        kept_fp32=len(exclude),
        weight_bits=7 if reduce_range else 8,
    )
    return dst


def quantize_weight_only_int8(
    src: Path, dst: Path, *, block_size: int = 128, accuracy_level: int = 4
) -> Path:
    """Weight-only int8 (``MatMulNBits``, 8 bits, symmetric, one scale per ``block_size`` weights).

    With ``accuracy_level=4`` the CPU kernel quantizes each row of activations per block on the fly, so a
    document's scores do not depend on its batch neighbours (unlike :func:`quantize_int8`, whose one scale
    per batch tensor does), and the error is far smaller; the fused Attention's QKV weights stay fp32.
    """
    try:
        from onnxruntime.quantization.matmul_nbits_quantizer import (
            DefaultWeightOnlyQuantConfig,
            MatMulNBitsQuantizer,
        )
    except ImportError as exc:  # it needs the onnx-ir package
        raise ExportError(f"weight-only int8 needs onnxruntime's MatMulNBits quantizer: {exc}") from exc
    try:
        with _quiet():
            config = DefaultWeightOnlyQuantConfig(
                block_size=block_size, is_symmetric=True, accuracy_level=accuracy_level, bits=8
            )
            quantizer = MatMulNBitsQuantizer(
                onnx.load(str(src)),
                bits=8,
                block_size=block_size,
                is_symmetric=True,
                accuracy_level=accuracy_level,
                algo_config=config,
            )
            quantizer.process()
            quantizer.model.save_model_to_file(str(dst), use_external_data_format=False)
    except Exception as exc:
        raise ExportError(f"weight-only int8 of {src.name} failed: {type(exc).__name__}: {exc}") from exc
    log.info(
        "onnx_quantized", file=dst.name, matmul_nbits=op_counts(dst)["MatMulNBits"], block_size=block_size
    )
    return dst
