"""``precision=auto`` on a CPU: of a pack's CPU variants, the one that runs fastest on this machine.

Which is fastest depends on the CPU more than on the pack. Weight-only int8 (``MatMulNBits``) beat fp32
on an Intel CPU with VNNI (72 vs 57 docs/s for MiniLM at 128 tokens) and lost to it on a 2-core AMD EPYC
with AVX2 alone (ehr-specialty: 12 vs 15 docs/s side by side); dynamic int8 won on both. So each candidate
session runs the same synthetic batch -- fixed pseudo-random token ids at the pack's length -- once to warm
up and :data:`TIMED_RUNS` times on the clock, and the best time wins. About a second per pack at load.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from nightclerk.shared.manifest import PackManifest, Variant

PROBE_DOCS = 16
TIMED_RUNS = 2
# BERT vocabularies: below 1000 are [PAD], [unused…], [CLS], [SEP], [MASK] and single characters. The ids
# stay under 2000 so a model whose embedding is smaller than its tokenizer's vocabulary still runs them.
_IDS = (1000, 2000)


@dataclass(frozen=True)
class Choice:
    variant: Variant
    session: Any  # the winner's session, kept so it is not loaded twice
    seconds: dict[str, float]  # best timed run per precision


def probe_feeds(manifest: PackManifest, length: int, seed: int = 0) -> dict[str, np.ndarray]:
    """PROBE_DOCS rows of ``length`` token ids, all attended: the shape real long documents have."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(*_IDS, (PROBE_DOCS, length))
    feeds = {"input_ids": ids.astype(np.int64), "attention_mask": np.ones((PROBE_DOCS, length), np.int64)}
    if "token_type_ids" in manifest.inputs:
        feeds["token_type_ids"] = np.zeros((PROBE_DOCS, length), np.int64)
    return feeds


def fastest(
    candidates: Sequence[Variant],
    load: Callable[[Variant], Any],
    output: str,
    feeds: dict[str, np.ndarray],
    clock: Callable[[], float] = time.perf_counter,
) -> Choice:
    """Load each candidate, time it on ``feeds``; the fastest, with its session and every best time."""
    best: tuple[float, Variant, Any] | None = None
    seconds: dict[str, float] = {}
    for variant in candidates:
        session = load(variant)
        session.run([output], feeds)  # warm-up: first-run allocations and kernel choice
        times = []
        for _ in range(TIMED_RUNS):
            started = clock()
            session.run([output], feeds)
            times.append(clock() - started)
        seconds[variant.precision] = min(times)
        if best is None or seconds[variant.precision] < best[0]:
            best = (seconds[variant.precision], variant, session)
    if best is None:
        raise ValueError("no candidate variants")
    return Choice(best[1], best[2], seconds)
