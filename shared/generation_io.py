"""ONNX input and output names of generation graphs: the contract between the exporters and the worker.

Two layouts, named as optimum names them so that a user's own export can follow the same contract.

**Decoder-only** (one graph, ``decoder``): inputs ``input_ids`` (batch, new), ``attention_mask``
(batch, past + new), ``position_ids`` (batch, new) and, per layer ``i``, ``past_key_values.{i}.key`` /
``.value`` (batch, kv_heads, past, head_dim); outputs ``logits`` (batch, 1, vocab) -- the last position
only -- and ``present.{i}.key`` / ``.value`` (batch, kv_heads, past + new, head_dim). The first step feeds a
past of length 0.

**Encoder-decoder** (three graphs): ``encoder`` takes ``input_ids`` and ``attention_mask`` (batch, source)
and gives ``last_hidden_state``. ``decoder`` (first step) takes ``input_ids`` (batch, new),
``encoder_attention_mask`` and ``encoder_hidden_states``, and gives ``logits``, the self-attention cache
``present.{i}.decoder.key`` / ``.value`` and the cross-attention cache ``present.{i}.encoder.key`` /
``.value`` (batch, heads, source, head_dim). ``decoder_with_past`` takes ``input_ids`` (batch, 1),
``encoder_attention_mask``, ``past_key_values.{i}.decoder.*`` and ``past_key_values.{i}.encoder.*`` and gives
``logits`` and ``present.{i}.decoder.*`` only: the cross-attention cache is computed once and kept.
"""

from __future__ import annotations

from typing import Literal

Layout = Literal["decoder-only", "encoder-decoder"]

INPUT_IDS = "input_ids"
ATTENTION_MASK = "attention_mask"
POSITION_IDS = "position_ids"
LOGITS = "logits"
ENCODER_ATTENTION_MASK = "encoder_attention_mask"
ENCODER_HIDDEN_STATES = "encoder_hidden_states"
LAST_HIDDEN_STATE = "last_hidden_state"

DECODER_GRAPH = "decoder"
ENCODER_GRAPH = "encoder"
DECODER_WITH_PAST_GRAPH = "decoder_with_past"


def past_names(layers: int) -> list[str]:
    """Decoder-only cache inputs, key then value for each layer."""
    return [f"past_key_values.{i}.{kind}" for i in range(layers) for kind in ("key", "value")]


def present_names(layers: int) -> list[str]:
    """Decoder-only cache outputs, in the order of :func:`past_names`."""
    return [f"present.{i}.{kind}" for i in range(layers) for kind in ("key", "value")]


def seq2seq_past_names(layers: int, attention: Literal["decoder", "encoder"]) -> list[str]:
    """Encoder-decoder cache inputs: ``decoder`` (self-attention) or ``encoder`` (cross-attention)."""
    return [f"past_key_values.{i}.{attention}.{kind}" for i in range(layers) for kind in ("key", "value")]


def seq2seq_present_names(layers: int, attention: Literal["decoder", "encoder"]) -> list[str]:
    """Encoder-decoder cache outputs, in the order of :func:`seq2seq_past_names`."""
    return [f"present.{i}.{attention}.{kind}" for i in range(layers) for kind in ("key", "value")]
