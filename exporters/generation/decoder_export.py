"""Decoder-only causal LMs (Llama family) with their key/value cache -> one ONNX ``decoder`` graph.

The graph follows :mod:`nightclerk.shared.generation_io`: ``(input_ids, attention_mask, position_ids,
past_key_values.*) -> (logits, present.*)``, so the worker runs the prompt (past of length 0) and every
later step through the same session. transformers 5 has no tuple caches, so :class:`DecoderWithPast`
rebuilds a ``DynamicCache`` from the flat past tensors the graph takes and flattens the updated cache
back out. The TorchScript exporter (``dynamo=False``, as in :mod:`nightclerk.exporters.onnx_export`) traces
it with a non-empty past; load models with ``attn_implementation="eager"``, the setting whose export has
been checked against PyTorch (logits, cache steps and greedy tokens).

During the export the model's attention is swapped for :func:`grouped_attention`: eager attention's
arithmetic without ``repeat_kv``. Eager attention copies every key/value head once per query head it
serves before the two matmuls; traced into ONNX that is an ``Expand`` of the whole cache at every decode step
(SmolLM2: 9 query heads over 3 key/value heads, so the cache was copied 3x per layer per step -- 30 % of a
batch-8 decode step's time on the CPU, measured with onnxruntime's profiler). Grouping the query heads of
each key/value head into one matmul gives the same products without the copy.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnx
import torch
from torch import nn

from nightclerk.exporters.errors import ExportError
from nightclerk.shared.generation_io import (
    ATTENTION_MASK,
    INPUT_IDS,
    LOGITS,
    POSITION_IDS,
    past_names,
    present_names,
)

OPSET = 17
GROUPED_ATTENTION = "nightclerk_grouped"  # the name it is registered under with transformers
_TRACE_PAST = 3  # a non-empty past when tracing, so the cache concatenation is in the graph
_TRACE_NEW = 4

# tiny_llama's special token ids (the vocabulary itself is meaningless: random weights, no tokenizer)
TINY_PAD_ID = 0
TINY_BOS_ID = 1
TINY_EOS_ID = 2


@dataclass(frozen=True)
class DecoderShape:
    layers: int
    kv_heads: int
    head_dim: int
    vocab_size: int
    hidden_size: int


def decoder_shape(model: nn.Module) -> DecoderShape:
    """Cache geometry from the model's config (``head_dim`` when the config has one, else hidden / heads)."""
    config: Any = getattr(model, "config", None)
    if config is None:
        raise ExportError(f"{type(model).__name__} has no config: not a transformers causal LM")
    config = config.get_text_config() if hasattr(config, "get_text_config") else config
    heads = int(config.num_attention_heads)
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    return DecoderShape(
        layers=int(config.num_hidden_layers),
        kv_heads=int(getattr(config, "num_key_value_heads", None) or heads),
        head_dim=int(head_dim),
        vocab_size=int(config.vocab_size),
        hidden_size=int(config.hidden_size),
    )


class DecoderWithPast(nn.Module):
    """``(input_ids, attention_mask, position_ids, *past) -> (logits, *present)`` around a causal LM.

    ``logits`` are the last position's only, (batch, 1, vocab): with left padding that is every row's next
    token, and a 500-token prefill of a 49k-token vocabulary does not return 100 MB per row.

    ``past`` is key then value per layer, each (batch, kv_heads, past, head_dim); ``attention_mask`` covers
    past + new positions (0 = padding); ``position_ids`` are those of the new tokens.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.layers = decoder_shape(model).layers

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        position_ids: torch.Tensor,
        *past: torch.Tensor,
    ) -> tuple[torch.Tensor, ...]:
        from transformers import DynamicCache

        if len(past) != 2 * self.layers:
            raise ValueError(f"expected {2 * self.layers} past tensors (key, value per layer): {len(past)}")
        cache = DynamicCache(ddp_cache_data=[(past[2 * i], past[2 * i + 1]) for i in range(self.layers)])
        out = self.model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            past_key_values=cache,
            use_cache=True,
            logits_to_keep=1,  # the last position only (see the class docstring)
        )
        present: list[torch.Tensor] = []
        for layer in out.past_key_values.layers:
            present += [layer.keys, layer.values]
        logits: torch.Tensor = out.logits.float()
        return (logits, *present)


def grouped_attention(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float,
    dropout: float = 0.0,
    **_: Any,
) -> tuple[torch.Tensor, None]:
    """transformers' ``eager_attention_forward`` for inference, query heads grouped per key/value head.

    ``query`` (batch, heads, new, head_dim); ``key``/``value`` (batch, kv_heads, total, head_dim). Query head
    ``h`` reads key/value head ``h // groups`` (``repeat_kv``'s order), so the ``groups`` query heads of one
    key/value head are stacked along the sequence axis and multiplied by that head's keys once.
    """
    batch, heads, new, head_dim = query.shape
    kv_heads, total = key.shape[1], key.shape[2]
    stacked = query.reshape(batch, kv_heads, -1, head_dim)  # (batch, kv_heads, groups * new, head_dim)
    scores = torch.matmul(stacked, key.transpose(2, 3)) * scaling
    scores = scores.reshape(batch, kv_heads, -1, new, total)  # (batch, kv_heads, groups, new, total)
    if attention_mask is not None:  # (batch, 1, new, total): the same for every head
        scores = scores + attention_mask.unsqueeze(2)
    probs = nn.functional.softmax(scores, dim=-1, dtype=torch.float32).to(query.dtype)
    out = torch.matmul(probs.reshape(batch, kv_heads, -1, total), value)
    return out.reshape(batch, heads, new, head_dim).transpose(1, 2).contiguous(), None


@contextmanager
def _grouped_attention(model: nn.Module) -> Iterator[None]:
    """Run ``model`` with :func:`grouped_attention` (and eager's additive mask), then restore its setting."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, eager_mask

    AttentionInterface.register(GROUPED_ATTENTION, grouped_attention)
    AttentionMaskInterface.register(GROUPED_ATTENTION, eager_mask)
    config: Any = model.config  # decoder_shape has checked that there is one
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    saved = {id(c): (c, c._attn_implementation) for c in (config, text)}  # the layers read the text config
    for c, _ in saved.values():
        c._attn_implementation = GROUPED_ATTENTION
    try:
        yield
    finally:
        for c, before in saved.values():
            c._attn_implementation = before


def _sample_inputs(shape: DecoderShape) -> tuple[torch.Tensor, ...]:
    """Two rows, the second left-padded by one, with a past of ``_TRACE_PAST`` positions."""
    generator = torch.Generator().manual_seed(0)
    batch, total = 2, _TRACE_PAST + _TRACE_NEW
    ids = torch.randint(0, shape.vocab_size, (batch, _TRACE_NEW), generator=generator, dtype=torch.int64)
    mask = torch.ones(batch, total, dtype=torch.int64)
    mask[1, 0] = 0
    positions = (mask.cumsum(-1) - 1).clamp(min=0)[:, _TRACE_PAST:]
    past = tuple(
        torch.randn(batch, shape.kv_heads, _TRACE_PAST, shape.head_dim, generator=generator)
        for _ in range(2 * shape.layers)
    )
    return (ids, mask, positions, *past)


def export_decoder(model: nn.Module, path: Path, *, opset: int = OPSET) -> Path:
    """Export ``model`` (a causal LM with the transformers cache API) as the contract's ``decoder`` graph.

    Writes a single file (protobuf's 2 GB limit is far above the ~135M-parameter models this serves).
    """
    try:
        shape = decoder_shape(model)
        wrapper = DecoderWithPast(model).eval()
    except ExportError:
        raise
    except Exception as exc:
        raise ExportError(f"decoder export: cannot wrap {type(model).__name__}: {exc}") from exc
    pasts, presents = past_names(shape.layers), present_names(shape.layers)
    axes: dict[str, dict[int, str]] = {
        INPUT_IDS: {0: "batch", 1: "sequence"},
        ATTENTION_MASK: {0: "batch", 1: "past_sequence + sequence"},
        POSITION_IDS: {0: "batch", 1: "sequence"},
        LOGITS: {0: "batch", 1: "sequence"},
    }
    axes |= {name: {0: "batch", 2: "past_sequence"} for name in pasts}
    axes |= {name: {0: "batch", 2: "past_sequence + sequence"} for name in presents}
    path.parent.mkdir(parents=True, exist_ok=True)
    step = "export"
    try:
        with (
            warnings.catch_warnings(),
            torch.inference_mode(False),
            torch.no_grad(),
            _grouped_attention(wrapper.model),
        ):
            warnings.simplefilter("ignore")  # tracer warnings about shape-dependent Python branches
            torch.onnx.export(
                wrapper,
                _sample_inputs(shape),
                str(path),
                dynamo=False,
                opset_version=opset,
                input_names=[INPUT_IDS, ATTENTION_MASK, POSITION_IDS, *pasts],
                output_names=[LOGITS, *presents],
                dynamic_axes=axes,
                do_constant_folding=True,
            )
        step = "check"
        onnx.checker.check_model(str(path))
    except Exception as exc:  # torch and onnx raise many types; name the step and keep the cause
        raise ExportError(f"decoder {step} of {path.name} failed: {type(exc).__name__}: {exc}") from exc
    return path


def quantize_decoder_int8(src: Path, dst: Path) -> Path:
    """Dynamic int8 of the weight MatMuls (per-channel QInt8 weights, 7-bit range); loaded once as a check.

    ``reduce_range``: on x86 CPUs without VNNI (AVX2 only) the u8 x s8 kernel sums pairs of products in
    saturating int16, and full-range per-channel weights overflow it. On the tiny test model that halved
    greedy-token agreement with fp32 (0.43 -> 0.84); a 7-bit weight range costs little where VNNI exists.
    """
    import onnxruntime as ort
    from onnxruntime.quantization import QuantType, quantize_dynamic

    step = "quantize"
    try:
        quantize_dynamic(
            model_input=str(src),
            model_output=str(dst),
            per_channel=True,
            weight_type=QuantType.QInt8,
            op_types_to_quantize=["MatMul"],
            reduce_range=True,
        )
        step = "load"
        ort.InferenceSession(str(dst), providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise ExportError(f"int8 {step} of {src.name} failed: {type(exc).__name__}: {exc}") from exc
    return dst


def tiny_llama(seed: int = 0, vocab_size: int = 256) -> nn.Module:
    """A random ``LlamaForCausalLM`` for tests: hidden 32, 2 layers, 4 heads over 2 key/value heads (GQA).

    Token ids: pad ``TINY_PAD_ID`` (0), bos ``TINY_BOS_ID`` (1), eos ``TINY_EOS_ID`` (2); any id below
    ``vocab_size`` is valid. The wide initializer range keeps greedy decoding from settling on one token.
    """
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        initializer_range=0.4,
        tie_word_embeddings=True,
        pad_token_id=TINY_PAD_ID,
        bos_token_id=TINY_BOS_ID,
        eos_token_id=TINY_EOS_ID,
    )
    config._attn_implementation = "eager"
    torch.manual_seed(seed)
    model: nn.Module = LlamaForCausalLM(config)
    return model.eval()
