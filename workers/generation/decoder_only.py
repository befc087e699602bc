"""A decoder-only model (one ``decoder`` graph with past key/values) as a step function for the searches.

Prompts of different lengths share a batch by **left** padding: every row's last prompt token then sits in
the last column, so the logits for the next token of every row are the last position's. Position ids count
real tokens only (``cumsum(mask) - 1``), as ``transformers`` does, so padding does not shift them.

On the CPU the prompt pass (prefill) runs in groups of similar length (:func:`prefill_groups`) rather than
padded to the batch's longest prompt: prefill is most of a summary's time there, and its matmuls pay for
every padding position (and attention for its square). The groups' caches are then left-padded with zeros
(masked out) into one batch for the decode steps. On CUDA the batch is prefilled as one: merging caches that
live on the device would need a device-side pad, and padding costs a GPU far less.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from nightclerk.shared.errors import InferenceError
from nightclerk.shared.generation_io import ATTENTION_MASK, INPUT_IDS, LOGITS, POSITION_IDS
from nightclerk.workers.batching import pad_rows
from nightclerk.workers.generation.graphs import GraphRunner, RowPicker, Tensor

PREFILL_SPREAD = 0.9  # a prefill group holds prompts at least this share of its longest one's length


def prefill_groups(lengths: Sequence[int], spread: float = PREFILL_SPREAD) -> list[list[int]]:
    """Row indices grouped for prefill: longest first, each group's prompts >= ``spread`` x its longest."""
    groups: list[list[int]] = []
    for row in sorted(range(len(lengths)), key=lambda i: -lengths[i]):
        if groups and lengths[row] >= spread * lengths[groups[-1][0]]:
            groups[-1].append(row)
        else:
            groups.append([row])
    return groups


@dataclass
class DecoderState:
    cache: list[Tensor]  # present_names order
    mask: np.ndarray  # (rows, past) int64: 0 on left padding
    next_position: np.ndarray  # (rows,) int64


class DecoderOnlyModel:
    def __init__(self, decoder: GraphRunner, picker: RowPicker, pad_token_id: int = 0) -> None:
        self.decoder = decoder
        self.picker = picker
        self.pad_token_id = pad_token_id
        self.past = [name for name in decoder.inputs if name.startswith("past_key_values.")]
        self.present = [name for name in decoder.outputs if name.startswith("present.")]
        if not self.past or len(self.past) != len(self.present) or LOGITS not in decoder.outputs:
            raise InferenceError(f"graph {decoder.name} does not follow the decoder-only layout")

    def histories(self, prompts: Sequence[Sequence[int]]) -> list[list[int]]:
        """What the repetition and n-gram rules look back on: the prompt itself."""
        return [list(prompt) for prompt in prompts]

    def start(self, prompts: Sequence[Sequence[int]]) -> tuple[np.ndarray, DecoderState]:
        groups = prefill_groups([len(prompt) for prompt in prompts]) if not self.decoder.on_device else []
        if len(groups) <= 1:
            return self._prefill(prompts)
        width = len(prompts[groups[0][0]])  # the groups come longest first
        logits: np.ndarray | None = None
        mask = np.zeros((len(prompts), width), dtype=np.int64)
        next_position = np.empty(len(prompts), dtype=np.int64)
        cache: list[np.ndarray] = []
        for group in groups:  # one group's cache at a time beside the merged one
            part_logits, state = self._prefill([prompts[row] for row in group])
            if logits is None:
                logits = np.empty((len(prompts), part_logits.shape[1]), dtype=part_logits.dtype)
                cache = [
                    np.zeros((len(prompts), t.shape[1], width, t.shape[3]), t.dtype) for t in state.cache
                ]
            rows, length = np.asarray(group), state.mask.shape[1]
            logits[rows] = part_logits
            mask[rows, width - length :] = state.mask
            next_position[rows] = state.next_position
            for merged, tensor in zip(cache, state.cache, strict=True):
                merged[rows, :, width - length :] = tensor  # left padding: zeros under a zero mask
            del state  # before the next group's prefill allocates its own cache
        assert logits is not None  # len(groups) > 1
        return logits, DecoderState(cache, mask, next_position)

    def _prefill(self, prompts: Sequence[Sequence[int]]) -> tuple[np.ndarray, DecoderState]:
        ids, mask = pad_rows(prompts, self.pad_token_id, left=True)
        rows = len(prompts)
        positions = np.clip(np.cumsum(mask, axis=1) - 1, 0, None)
        feeds: dict[str, Tensor] = {INPUT_IDS: ids, ATTENTION_MASK: mask, POSITION_IDS: positions}
        feeds.update({name: self.decoder.empty_cache(name, rows) for name in self.past})
        return self._run(feeds, mask, mask.sum(axis=1))

    def step(self, tokens: np.ndarray, state: DecoderState) -> tuple[np.ndarray, DecoderState]:
        rows = len(tokens)
        mask = np.concatenate([state.mask, np.ones((rows, 1), dtype=np.int64)], axis=1)
        feeds: dict[str, Tensor] = {
            INPUT_IDS: np.asarray(tokens, dtype=np.int64).reshape(rows, 1),
            ATTENTION_MASK: mask,
            POSITION_IDS: state.next_position.reshape(rows, 1),
        }
        feeds.update(zip(self.past, state.cache, strict=True))
        return self._run(feeds, mask, state.next_position + 1)

    def select(self, state: DecoderState, rows: np.ndarray) -> DecoderState:
        return DecoderState(self.picker.take(state.cache, rows), state.mask[rows], state.next_position[rows])

    def _run(
        self, feeds: dict[str, Tensor], mask: np.ndarray, next_position: np.ndarray
    ) -> tuple[np.ndarray, DecoderState]:
        out = self.decoder.run(feeds, host_outputs=(LOGITS,))
        logits = np.asarray(out[LOGITS])[:, -1, :].astype(np.float32)
        return logits, DecoderState([out[name] for name in self.present], mask, next_position)
