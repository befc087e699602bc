"""docs/s of a pack's variant as a worker computes it: cut to words, tokenize, length-sorted batches, run.

Measured at the end of a build on the eval texts, tokenization included, with the worker's batching (the
longest documents first, at most ``max_docs`` per batch and ``token_budget`` padded tokens) and its thread
settings (all cores on the CPU), so the figure in the manifest is comparable to what a worker reports.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from nightclerk.exporters.hardware import cpu_count
from nightclerk.exporters.parity import open_session
from nightclerk.exporters.tokens import pad
from nightclerk.shared.text_budget import cut_to_words


def plan(lengths: Sequence[int], token_budget: int, max_docs: int) -> list[list[int]]:
    """Longest first; a batch closes at ``max_docs`` documents or ``token_budget`` padded tokens."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i], reverse=True)
    batches: list[list[int]] = []
    current: list[int] = []
    width = 0
    for index in order:
        longest = max(width, lengths[index], 1)
        if current and (len(current) >= max_docs or longest * (len(current) + 1) > token_budget):
            batches.append(current)
            current, longest = [], max(lengths[index], 1)
        current.append(index)
        width = longest
    if current:
        batches.append(current)
    return batches


def docs_per_s(
    model: Path,
    tokenizer: Tokenizer,
    texts: Sequence[str],
    max_tokens: int,
    *,
    providers: list[str] | None = None,
    threads: int = 0,
    token_budget: int = 8192,
    max_docs: int = 64,
) -> float:
    """Documents per second over ``texts``, tokenization included (one pass after a warm-up)."""
    cuda = bool(providers) and providers[0] == "CUDAExecutionProvider"  # type: ignore[index]
    session = open_session(model, threads or (1 if cuda else cpu_count()), providers)
    wants = {node.name for node in session.get_inputs()}
    started = time.perf_counter()
    cut = [cut_to_words(text, max_tokens) for text in texts]
    encoded = [list(e.ids) for e in tokenizer.encode_batch(cut, add_special_tokens=True)]
    for batch in plan([len(row) for row in encoded], token_budget, max_docs):
        ids, mask = pad([encoded[i] for i in batch])
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in wants:
            feeds["token_type_ids"] = np.zeros_like(ids)
        session.run(["logits"], feeds)
    seconds = time.perf_counter() - started
    return round(len(texts) / seconds, 1) if seconds > 0 else 0.0
