"""An encoder-decoder model (``encoder``, ``decoder``, ``decoder_with_past`` graphs) as a step function.

The encoder runs once per batch; the first decoder step computes the cross-attention keys/values, which are
then kept (and only re-picked when rows are reordered or dropped) while the self-attention cache grows.
Sources are right-padded; the decoder side needs no mask, since every row steps together.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from nightclerk.shared.errors import InferenceError
from nightclerk.shared.generation_io import (
    ATTENTION_MASK,
    ENCODER_ATTENTION_MASK,
    ENCODER_HIDDEN_STATES,
    INPUT_IDS,
    LAST_HIDDEN_STATE,
    LOGITS,
)
from nightclerk.workers.batching import pad_rows
from nightclerk.workers.generation.graphs import GraphRunner, RowPicker, Tensor


@dataclass
class Seq2SeqState:
    self_cache: list[Tensor]
    cross_cache: list[Tensor]
    encoder_mask: np.ndarray  # (rows, source) int64


class Seq2SeqModel:
    def __init__(
        self,
        encoder: GraphRunner,
        decoder: GraphRunner,
        decoder_with_past: GraphRunner,
        picker: RowPicker,
        *,
        decoder_start_token_id: int,
        pad_token_id: int = 0,
    ) -> None:
        self.encoder, self.decoder, self.decoder_with_past = encoder, decoder, decoder_with_past
        self.picker = picker
        self.start_token = decoder_start_token_id
        self.pad_token_id = pad_token_id
        self.self_present = [n for n in decoder.outputs if n.startswith("present.") and ".decoder." in n]
        self.cross_present = [n for n in decoder.outputs if n.startswith("present.") and ".encoder." in n]
        self.self_past = [n for n in decoder_with_past.inputs if ".decoder." in n]
        self.cross_past = [n for n in decoder_with_past.inputs if ".encoder." in n]
        self.step_present = [n for n in decoder_with_past.outputs if n.startswith("present.")]
        if not self.self_present or len(self.self_past) != len(self.step_present):
            raise InferenceError("graphs do not follow the encoder-decoder layout")

    def histories(self, prompts: Sequence[Sequence[int]]) -> list[list[int]]:
        """What the repetition and n-gram rules look back on: the decoder's own tokens, from its start."""
        return [[self.start_token] for _ in prompts]

    def start(self, sources: Sequence[Sequence[int]]) -> tuple[np.ndarray, Seq2SeqState]:
        ids, mask = pad_rows(sources, self.pad_token_id, left=False)
        rows = len(sources)
        hidden = self.encoder.run({INPUT_IDS: ids, ATTENTION_MASK: mask}, host_outputs=())[LAST_HIDDEN_STATE]
        out = self.decoder.run(
            {
                INPUT_IDS: np.full((rows, 1), self.start_token, dtype=np.int64),
                ENCODER_ATTENTION_MASK: mask,
                ENCODER_HIDDEN_STATES: hidden,
            },
            host_outputs=(LOGITS,),
        )
        state = Seq2SeqState([out[n] for n in self.self_present], [out[n] for n in self.cross_present], mask)
        return np.asarray(out[LOGITS])[:, -1, :].astype(np.float32), state

    def step(self, tokens: np.ndarray, state: Seq2SeqState) -> tuple[np.ndarray, Seq2SeqState]:
        feeds: dict[str, Tensor] = {
            INPUT_IDS: np.asarray(tokens, dtype=np.int64).reshape(-1, 1),
            ENCODER_ATTENTION_MASK: state.encoder_mask,
        }
        feeds.update(zip(self.self_past, state.self_cache, strict=True))
        feeds.update(zip(self.cross_past, state.cross_cache, strict=True))
        out = self.decoder_with_past.run(feeds, host_outputs=(LOGITS,))
        state = Seq2SeqState([out[n] for n in self.step_present], state.cross_cache, state.encoder_mask)
        return np.asarray(out[LOGITS])[:, -1, :].astype(np.float32), state

    def select(self, state: Seq2SeqState, rows: np.ndarray) -> Seq2SeqState:
        return Seq2SeqState(
            self.picker.take(state.self_cache, rows),
            self.picker.take(state.cross_cache, rows),
            state.encoder_mask[rows],
        )
