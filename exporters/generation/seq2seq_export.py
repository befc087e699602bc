"""Encoder-decoder models (T5, BART) -> three ONNX graphs: encoder, first-step decoder, decoder with past.

The graphs follow the "encoder-decoder" contract of :mod:`nightclerk.shared.generation_io`: the encoder runs
once per source, the first-step decoder computes the cross-attention keys/values once, and every later step
runs the decoder with past on one token, feeding back its self-attention cache and reusing the cross cache.

transformers 5 takes caches only as objects (``EncoderDecoderCache`` of two ``DynamicCache``), so the wrappers
build those objects from flat tensors inside ``forward`` and read them back out: the TorchScript exporter
(``dynamo=False``, as in :mod:`nightclerk.exporters.onnx_export`) then sees plain tensors in and out.
Attention must be ``eager``; the with-past graph is traced with a non-empty past so the cached code paths
(cross-attention reuse, position offsets) are the ones recorded.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnx
import torch
from torch import nn

from nightclerk.exporters.errors import ExportError
from nightclerk.shared.generation_io import (
    ATTENTION_MASK,
    DECODER_GRAPH,
    DECODER_WITH_PAST_GRAPH,
    ENCODER_ATTENTION_MASK,
    ENCODER_GRAPH,
    ENCODER_HIDDEN_STATES,
    INPUT_IDS,
    LAST_HIDDEN_STATE,
    LOGITS,
    seq2seq_past_names,
    seq2seq_present_names,
)

OPSET = 17
TRACE_BATCH = 3
TRACE_SOURCE = 7
TRACE_NEW = 2  # first-step decoder traced on 2 tokens: the causal mask is materialized, not a 1x1 shortcut
TRACE_PAST = 3  # non-empty self-attention past: the cached code paths are the traced ones

TINY_VOCAB = 256
TINY_D_MODEL = 32
TINY_HEADS = 4
TINY_LAYERS = 2
TINY_FFN = 64
T5_INIT_FACTOR = 8.0


@dataclass(frozen=True)
class Seq2SeqShape:
    """What a runner needs to size caches and start decoding."""

    decoder_layers: int
    heads: int
    head_dim: int
    d_model: int
    vocab_size: int
    decoder_start_token_id: int
    eos_token_id: int
    pad_token_id: int


def seq2seq_shape(model: nn.Module) -> Seq2SeqShape:
    """Read the cache geometry and special tokens from a T5- or BART-style config."""
    config: Any = getattr(model, "config", None)
    try:
        d_model = int(config.d_model)
        if hasattr(config, "d_kv"):  # T5 family: explicit head size, may differ from d_model / heads
            layers, heads, head_dim = int(config.num_decoder_layers), int(config.num_heads), int(config.d_kv)
        else:  # BART family
            layers, heads = int(config.decoder_layers), int(config.decoder_attention_heads)
            head_dim = d_model // heads
        return Seq2SeqShape(
            decoder_layers=layers,
            heads=heads,
            head_dim=head_dim,
            d_model=d_model,
            vocab_size=int(config.vocab_size),
            decoder_start_token_id=int(config.decoder_start_token_id),
            eos_token_id=int(config.eos_token_id),
            pad_token_id=int(config.pad_token_id),
        )
    except (AttributeError, TypeError, ValueError) as exc:
        raise ExportError(
            f"not a T5- or BART-style encoder-decoder config: {type(exc).__name__}: {exc}"
        ) from exc


def _caches(flat: tuple[torch.Tensor, ...]) -> Any:
    """A ``DynamicCache`` from ``(k0, v0, k1, v1, ...)``."""
    from transformers import DynamicCache

    return DynamicCache(ddp_cache_data=list(zip(flat[0::2], flat[1::2], strict=True)))


def _flatten(cache: Any) -> list[torch.Tensor]:
    """``(k0, v0, k1, v1, ...)`` from a ``DynamicCache``, the order of the contract's name lists."""
    return [tensor for layer in cache.layers for tensor in (layer.keys, layer.values)]


class EncoderGraph(nn.Module):
    """``(input_ids, attention_mask) -> last_hidden_state``."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.encoder: nn.Module = model.get_encoder()  # type: ignore[operator]

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden: torch.Tensor = self.encoder(
            input_ids=input_ids, attention_mask=attention_mask
        ).last_hidden_state
        return hidden


class DecoderGraph(nn.Module):
    """First step: ``(input_ids, encoder_attention_mask, encoder_hidden_states) -> logits, self presents,
    cross presents``; the cross-attention keys/values are computed here, once."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(
        self,
        input_ids: torch.Tensor,
        encoder_attention_mask: torch.Tensor,
        encoder_hidden_states: torch.Tensor,
    ) -> tuple[torch.Tensor, ...]:
        from transformers import DynamicCache, EncoderDecoderCache

        cache = EncoderDecoderCache(DynamicCache(), DynamicCache())
        out = self.model(
            encoder_outputs=(encoder_hidden_states,),
            attention_mask=encoder_attention_mask,
            decoder_input_ids=input_ids,
            past_key_values=cache,
            use_cache=True,
        )
        cache = out.past_key_values
        return (
            out.logits,
            *_flatten(cache.self_attention_cache),
            *_flatten(cache.cross_attention_cache),
        )


class DecoderWithPastGraph(nn.Module):
    """Later steps: ``(input_ids (batch, 1), encoder_attention_mask, self pasts..., cross pasts...) -> logits,
    self presents``; the cross cache is read, never recomputed."""

    def __init__(self, model: nn.Module, layers: int, d_model: int) -> None:
        super().__init__()
        self.model = model
        self.layers = layers
        self.d_model = d_model

    def forward(
        self, input_ids: torch.Tensor, encoder_attention_mask: torch.Tensor, *past: torch.Tensor
    ) -> tuple[torch.Tensor, ...]:
        from transformers import EncoderDecoderCache

        n = 2 * self.layers
        cache = EncoderDecoderCache(_caches(past[:n]), _caches(past[n:]))
        # With the cross cache filled the decoder reads only the shape (batch, source) of the encoder states,
        # but skips cross-attention when it is None: a zero placeholder whose values are never used.
        placeholder = torch.zeros_like(encoder_attention_mask, dtype=past[n].dtype)[:, :, None]
        out = self.model(
            encoder_outputs=(placeholder.expand(-1, -1, self.d_model),),
            attention_mask=encoder_attention_mask,
            decoder_input_ids=input_ids,
            past_key_values=cache,
            use_cache=True,
        )
        return (out.logits, *_flatten(out.past_key_values.self_attention_cache))


def _trace_inputs(shape: Seq2SeqShape) -> dict[str, tuple[torch.Tensor, ...]]:
    """Sample inputs per graph, the second source right-padded so a real mask is traced. Sizes differ from
    the tests' (batch 2, source 9) so a size frozen by the tracer shows as a failure there."""
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(3, shape.vocab_size, (TRACE_BATCH, TRACE_SOURCE), generator=generator)
    mask = torch.ones_like(ids)
    mask[1, TRACE_SOURCE - 3 :] = 0
    ids[1, TRACE_SOURCE - 3 :] = shape.pad_token_id
    hidden = torch.randn(TRACE_BATCH, TRACE_SOURCE, shape.d_model, generator=generator)
    new = torch.randint(3, shape.vocab_size, (TRACE_BATCH, TRACE_NEW), generator=generator)
    step = torch.randint(3, shape.vocab_size, (TRACE_BATCH, 1), generator=generator)
    kv = (TRACE_BATCH, shape.heads)
    self_past = [
        torch.randn(*kv, TRACE_PAST, shape.head_dim, generator=generator)
        for _ in range(2 * shape.decoder_layers)
    ]
    cross_past = [
        torch.randn(*kv, TRACE_SOURCE, shape.head_dim, generator=generator)
        for _ in range(2 * shape.decoder_layers)
    ]
    return {
        ENCODER_GRAPH: (ids, mask),
        DECODER_GRAPH: (new, mask, hidden),
        DECODER_WITH_PAST_GRAPH: (step, mask, *self_past, *cross_past),
    }


def graph_io(layers: int) -> dict[str, tuple[list[str], list[str]]]:
    """Input and output names of each graph, in order."""
    self_past, cross_past = seq2seq_past_names(layers, "decoder"), seq2seq_past_names(layers, "encoder")
    self_present, cross_present = (
        seq2seq_present_names(layers, "decoder"),
        seq2seq_present_names(layers, "encoder"),
    )
    return {
        ENCODER_GRAPH: ([INPUT_IDS, ATTENTION_MASK], [LAST_HIDDEN_STATE]),
        DECODER_GRAPH: (
            [INPUT_IDS, ENCODER_ATTENTION_MASK, ENCODER_HIDDEN_STATES],
            [LOGITS, *self_present, *cross_present],
        ),
        DECODER_WITH_PAST_GRAPH: (
            [INPUT_IDS, ENCODER_ATTENTION_MASK, *self_past, *cross_past],
            [LOGITS, *self_present],
        ),
    }


def _dynamic_axes(layers: int) -> dict[str, dict[str, dict[int, str]]]:
    batch_source = {0: "batch", 1: "source"}
    cross = {0: "batch", 2: "source"}
    decoder: dict[str, dict[int, str]] = {
        INPUT_IDS: {0: "batch", 1: "decoder_sequence"},
        ENCODER_ATTENTION_MASK: batch_source,
        ENCODER_HIDDEN_STATES: batch_source,
        LOGITS: {0: "batch", 1: "decoder_sequence"},
    }
    decoder |= {
        name: {0: "batch", 2: "decoder_sequence"} for name in seq2seq_present_names(layers, "decoder")
    }
    decoder |= {name: cross for name in seq2seq_present_names(layers, "encoder")}
    with_past: dict[str, dict[int, str]] = {
        INPUT_IDS: {0: "batch"},
        ENCODER_ATTENTION_MASK: batch_source,
        LOGITS: {0: "batch"},
    }
    with_past |= {name: {0: "batch", 2: "past_sequence"} for name in seq2seq_past_names(layers, "decoder")}
    with_past |= {name: cross for name in seq2seq_past_names(layers, "encoder")}
    with_past |= {
        name: {0: "batch", 2: "past_sequence_plus_1"} for name in seq2seq_present_names(layers, "decoder")
    }
    return {
        ENCODER_GRAPH: {
            ATTENTION_MASK: batch_source,
            INPUT_IDS: batch_source,
            LAST_HIDDEN_STATE: batch_source,
        },
        DECODER_GRAPH: decoder,
        DECODER_WITH_PAST_GRAPH: with_past,
    }


def export_seq2seq(model: nn.Module, out_dir: Path, *, opset: int = OPSET) -> dict[str, Path]:
    """Export ``model`` (eval mode, eager attention) to ``encoder.onnx``, ``decoder.onnx`` and
    ``decoder_with_past.onnx`` in ``out_dir``; each is checked. Returns the paths by graph name."""
    shape = seq2seq_shape(model)
    model.eval()
    modules: dict[str, nn.Module] = {
        ENCODER_GRAPH: EncoderGraph(model),
        DECODER_GRAPH: DecoderGraph(model),
        DECODER_WITH_PAST_GRAPH: DecoderWithPastGraph(model, shape.decoder_layers, shape.d_model),
    }
    inputs = _trace_inputs(shape)
    names = graph_io(shape.decoder_layers)
    axes = _dynamic_axes(shape.decoder_layers)
    paths: dict[str, Path] = {}
    for graph, module in modules.items():
        path = out_dir / f"{graph}.onnx"
        input_names, output_names = names[graph]
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
                warnings.simplefilter("ignore")  # tracer warnings about shape-dependent Python branches
                torch.onnx.export(
                    module,
                    inputs[graph],
                    str(path),
                    dynamo=False,
                    opset_version=opset,
                    input_names=input_names,
                    output_names=output_names,
                    dynamic_axes=axes[graph],
                    do_constant_folding=True,
                )
            onnx.checker.check_model(str(path))
        except Exception as exc:  # torch and onnx raise many types; name the graph and keep the cause
            raise ExportError(
                f"ONNX export of the {graph} graph failed: {type(exc).__name__}: {exc}"
            ) from exc
        paths[graph] = path
    return paths


def tiny_t5(seed: int = 0, vocab_size: int = TINY_VOCAB) -> nn.Module:
    """A random ``T5ForConditionalGeneration`` for tests, in eval mode.

    Special tokens follow T5: pad 0 (also the decoder start token), eos 1. transformers 5 always ties T5's
    head to the shared embedding; ``tie_word_embeddings=False`` only drops the ``d_model**-0.5`` output
    scaling (the T5 v1.1 convention). ``initializer_factor`` is widened so greedy decoding does not settle on
    one repeated token at once.
    """
    from transformers import T5Config, T5ForConditionalGeneration

    settings: dict[str, Any] = {
        "vocab_size": vocab_size,
        "d_model": TINY_D_MODEL,
        "d_kv": TINY_D_MODEL // TINY_HEADS,
        "d_ff": TINY_FFN,
        "num_layers": TINY_LAYERS,
        "num_decoder_layers": TINY_LAYERS,
        "num_heads": TINY_HEADS,
        "relative_attention_num_buckets": 8,
        "relative_attention_max_distance": 32,
        "dropout_rate": 0.0,
        "initializer_factor": T5_INIT_FACTOR,
        "feed_forward_proj": "relu",
        "tie_word_embeddings": False,
        "pad_token_id": 0,
        "eos_token_id": 1,
        "decoder_start_token_id": 0,
    }
    config = T5Config(**settings)
    config._attn_implementation = "eager"
    torch.manual_seed(seed)
    model: nn.Module = T5ForConditionalGeneration(config)
    with torch.no_grad():
        # The final norm and the head both grow with the factor: logits reach the hundreds, where fp32
        # rounding alone exceeds a 1e-4 parity tolerance. Scaling the head (tied: the shared embedding too)
        # down keeps them O(10) and decoding varied.
        model.get_output_embeddings().weight.div_(T5_INIT_FACTOR**2)  # type: ignore[operator]
    return model.eval()


def tiny_bart(seed: int = 0, vocab_size: int = TINY_VOCAB) -> nn.Module:
    """A random ``BartForConditionalGeneration`` for tests, in eval mode.

    Special tokens follow BART: bos 0, pad 1, eos 2 (also the decoder start token). Forced bos/eos are off so
    greedy decoding is the graphs' argmax alone. The head is untied from the embedding (a tied random BART
    mostly predicts the token it was just fed) and ``init_std`` widened to 0.15: wider, and most sources
    decode to one repeated token; narrower, and the top-2 logit margins shrink toward the parity tolerance.
    """
    from transformers import BartConfig, BartForConditionalGeneration

    settings: dict[str, Any] = {
        "vocab_size": vocab_size,
        "d_model": TINY_D_MODEL,
        "encoder_layers": TINY_LAYERS,
        "decoder_layers": TINY_LAYERS,
        "encoder_attention_heads": TINY_HEADS,
        "decoder_attention_heads": TINY_HEADS,
        "encoder_ffn_dim": TINY_FFN,
        "decoder_ffn_dim": TINY_FFN,
        "max_position_embeddings": 64,
        "dropout": 0.0,
        "init_std": 0.15,
        "tie_word_embeddings": False,
        "bos_token_id": 0,
        "pad_token_id": 1,
        "eos_token_id": 2,
        "decoder_start_token_id": 2,
        "forced_bos_token_id": None,
        "forced_eos_token_id": None,
    }
    config = BartConfig(**settings)
    config._attn_implementation = "eager"
    torch.manual_seed(seed)
    model: nn.Module = BartForConditionalGeneration(config)
    return model.eval()
