"""Greedy and beam search over any step model (decoder-only or encoder-decoder), in numpy.

Both follow ``transformers`` ``generate`` (5.x) step for step -- the score adjustments, beam search's top-k
over ``2 * num_beams`` candidates, its length-normalized finished scores and its early-stop heuristic -- so
that the worker's output can be checked token for token against the reference. Greedy search drops a row
from the batch as soon as it is finished, so a long-running row does not make finished ones pay per step.
Returned sequences hold the generated tokens only, ending with the stop token when one was produced.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from nightclerk.workers.generation.processors import adjust, log_softmax
from nightclerk.workers.generation.settings import DecodeSettings

_FINISHED_OFF = -1.0e9  # transformers' stand-in for "not a candidate"


class StepModel(Protocol):
    def histories(self, prompts: Sequence[Sequence[int]]) -> list[list[int]]: ...
    def start(self, prompts: Sequence[Sequence[int]]) -> tuple[np.ndarray, Any]: ...
    def step(self, tokens: np.ndarray, state: Any) -> tuple[np.ndarray, Any]: ...
    def select(self, state: Any, rows: np.ndarray) -> Any: ...


def generate(model: StepModel, prompts: Sequence[Sequence[int]], settings: DecodeSettings) -> list[list[int]]:
    if not prompts:
        return []
    if settings.num_beams == 1:
        return greedy(model, prompts, settings)
    return beam_search(model, prompts, settings)


def greedy(model: StepModel, prompts: Sequence[Sequence[int]], settings: DecodeSettings) -> list[list[int]]:
    stop = set(settings.eos_token_ids)
    logits, state = model.start(prompts)
    histories = model.histories(prompts)
    outputs: list[list[int]] = [[] for _ in prompts]
    active = np.arange(len(prompts))  # prompt index of each row of the model's batch
    for produced in range(1, settings.max_new_tokens + 1):
        scores = adjust(logits, [histories[i] for i in active], settings)
        tokens = scores.argmax(axis=1)
        going = []
        for row, index in enumerate(active):
            token = int(tokens[row])
            outputs[index].append(token)
            histories[index].append(token)
            if token not in stop:
                going.append(row)
        if not going or produced == settings.max_new_tokens:
            break
        if len(going) < len(active):
            keep = np.asarray(going, dtype=np.int64)
            state, active, tokens = model.select(state, keep), active[keep], tokens[keep]
        logits, state = model.step(tokens, state)
    return outputs


def _top(values: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` largest per row, largest first (ties: lower index first)."""
    return np.argsort(-values, axis=1, kind="stable")[:, :k]


def beam_search(
    model: StepModel, prompts: Sequence[Sequence[int]], settings: DecodeSettings
) -> list[list[int]]:
    batch, beams = len(prompts), settings.num_beams
    stop = set(settings.eos_token_ids)
    keep = max(2, 1 + len(stop)) * beams
    logits, state = model.start(prompts)
    expand = np.repeat(np.arange(batch), beams)
    state, logits = model.select(state, expand), logits[expand]
    bases = model.histories(prompts)
    base_len = [len(base) for base in bases]
    running = [[list(bases[b]) for _ in range(beams)] for b in range(batch)]
    running_scores = np.zeros((batch, beams), dtype=np.float32)
    running_scores[:, 1:] = _FINISHED_OFF
    finished: list[list[list[int] | None]] = [[None] * beams for _ in range(batch)]
    finished_scores = np.full((batch, beams), _FINISHED_OFF, dtype=np.float32)
    is_finished = np.zeros((batch, beams), dtype=bool)
    improvable = np.ones(batch, dtype=bool)
    top_mask = np.arange(keep) < beams
    produced = 0
    while True:
        flat = [history for rows in running for history in rows]
        log_probs = adjust(log_softmax(logits), flat, settings)  # generate adjusts log-probs in beam search
        vocab = log_probs.shape[1]
        total = (log_probs.reshape(batch, beams, vocab) + running_scores[:, :, None]).reshape(batch, -1)
        picked = _top(total, keep)
        picked_scores = np.take_along_axis(total, picked, axis=1)
        source, token = picked // vocab, picked % vocab
        produced += 1
        hits = np.isin(token, list(stop)) | (produced >= settings.max_new_tokens)
        candidates = [
            [running[b][source[b, k]] + [int(token[b, k])] for k in range(keep)] for b in range(batch)
        ]

        # the best unfinished candidates run on
        runnable = picked_scores + hits * _FINISHED_OFF
        chosen = _top(runnable, beams)
        running_scores = np.take_along_axis(runnable, chosen, axis=1)
        running = [[candidates[b][k] for k in chosen[b]] for b in range(batch)]
        rows = (np.arange(batch)[:, None] * beams + np.take_along_axis(source, chosen, axis=1)).reshape(-1)

        # the best finished ones (among the top num_beams candidates) join the finished list
        just = hits & top_mask[None, :]
        final = picked_scores / (produced**settings.length_penalty)
        final = final + (is_finished.all(axis=1, keepdims=True) & settings.early_stopping) * _FINISHED_OFF
        final = final + (~improvable[:, None]) * _FINISHED_OFF + (~just) * _FINISHED_OFF
        merged_scores = np.concatenate([finished_scores, final], axis=1)
        merged_done = np.concatenate([is_finished, just], axis=1)
        best = _top(merged_scores, beams)
        finished = [
            [finished[b][k] if k < beams else candidates[b][k - beams] for k in best[b]] for b in range(batch)
        ]
        finished_scores = np.take_along_axis(merged_scores, best, axis=1)
        is_finished = np.take_along_axis(merged_done, best, axis=1)

        # transformers' heuristic: stop a prompt when its best running beam cannot beat its worst finished one
        best_possible = running_scores[:, 0] / (produced**settings.length_penalty)
        worst = np.where(is_finished, finished_scores.min(axis=1, keepdims=True), _FINISHED_OFF)
        improvable = improvable & (best_possible[:, None] > worst).any(axis=1)
        open_beams = not (is_finished.all() and settings.early_stopping)
        if not (improvable.any() and open_beams and not hits.all()):
            break
        state = model.select(state, rows)
        last = np.asarray([history[-1] for beams_of in running for history in beams_of], dtype=np.int64)
        logits, state = model.step(last, state)
    out = []
    for b in range(batch):
        winner = finished[b][0]
        out.append((winner if winner is not None else running[b][0])[base_len[b] :])
    return out
