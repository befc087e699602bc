"""(1) The limit: the worker's own ClassifierRuntime called in this process on all documents at once.

Tokenization, length sorting, batching and inference, nothing else: no queue, no store. One runtime per
pack variant usable on the device (fp32 and int8 on a CPU; fp32 and fp16 on a GPU, int8 too where the pack
allows it there) and per token length (the packs are trained at 128; 256 shows what longer inputs cost).
On CUDA each variant is measured again with IO binding (inputs copied once per batch, logits left on the
GPU until the end of the batch) -- see :func:`classify_io_bound`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnxruntime as ort

from bench.corpora import Corpus
from bench.stats import Spread
from nightclerk.shared.manifest import verify_pack
from nightclerk.shared.settings import Settings
from nightclerk.workers.classifier import ClassifierRuntime
from nightclerk.workers.device import Placement


@dataclass
class LimitRow:
    corpus: str
    pack: str
    precision: str
    recipe: str | None
    max_tokens: int
    binding: str  # "numpy" (what the worker does) or "io-binding" (CUDA only)
    docs: int
    docs_per_s: Spread = field(default_factory=Spread)
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {**{k: v for k, v in self.__dict__.items() if k != "docs_per_s"}, **self.docs_per_s.as_dict()}


def runtime_for(
    settings: Settings, placement: Placement, pack: str, precision: str, max_tokens: int, threads: int = 0
) -> ClassifierRuntime:
    return ClassifierRuntime(
        settings.packs_dir / pack,
        placement,
        precision=precision,
        threads=threads or settings.intra_op_threads,
        token_budget=settings.batch_token_budget,
        max_batch_docs=settings.max_batch_docs,
        max_tokens=max_tokens,
    )


def classify_io_bound(runtime: ClassifierRuntime, texts: list[str]) -> np.ndarray:
    """As :meth:`ClassifierRuntime.classify`, with the inputs bound on the GPU and the logits kept there."""
    encoded = runtime.encode(texts)
    out = np.zeros((len(texts), len(runtime.labels)), dtype=np.float32)
    for batch in runtime.batches(encoded):
        binding = runtime.session.io_binding()
        for name, array in runtime.feeds(encoded, batch).items():
            binding.bind_ortvalue_input(name, ort.OrtValue.ortvalue_from_numpy(array, "cuda", 0))
        binding.bind_output(runtime.manifest.output, "cuda", 0)
        runtime.session.run_with_iobinding(binding)
        out[batch] = binding.copy_outputs_to_cpu()[0]
    return out


def _io_bound(runtime: ClassifierRuntime) -> Callable[[list[str]], object]:
    return lambda texts: classify_io_bound(runtime, texts)


def _variants(settings: Settings, placement: Placement, pack: str) -> list[tuple[str, str | None]]:
    manifest = verify_pack(settings.packs_dir / pack, task="classify")
    return [(v.precision, v.recipe) for v in manifest.variants if v.device in ("any", placement.device)]


def run_limit(
    corpora: list[Corpus],
    settings: Settings,
    placement: Placement,
    *,
    reps: int,
    token_lengths: tuple[int, ...],
    say: Callable[[str], None],
) -> list[LimitRow]:
    """Each configuration once per repetition, repetitions outermost, so all see the same machine state."""
    rows: list[LimitRow] = []
    plan: list[tuple[LimitRow, list[str], Callable[[list[str]], object]]] = []
    for corpus in corpora:
        texts = corpus.texts
        for precision, recipe in _variants(settings, placement, corpus.pack):
            for tokens in token_lengths:
                bindings = ["numpy", "io-binding"] if placement.device == "cuda" else ["numpy"]
                for binding in bindings:
                    row = LimitRow(corpus.name, corpus.pack, precision, recipe, tokens, binding, len(texts))
                    rows.append(row)
                    try:
                        runtime = runtime_for(settings, placement, corpus.pack, precision, tokens)
                        call = runtime.classify if binding == "numpy" else _io_bound(runtime)
                        call(texts[:64])  # warm-up: the first runs allocate
                    except Exception as exc:  # a variant that cannot run here is reported, not fatal
                        row.error = f"{type(exc).__name__}: {exc}"[:300]
                        say(f"  limit {corpus.name} {precision} {tokens} {binding}: {row.error}")
                        continue
                    plan.append((row, texts, call))
    for rep in range(reps):
        for row, texts, call in plan:
            started = time.perf_counter()
            call(texts)
            row.docs_per_s.add(len(texts) / (time.perf_counter() - started))
            say(
                f"  limit rep {rep + 1}/{reps} {row.corpus} {row.precision}@{row.max_tokens} {row.binding}: "
                f"{row.docs_per_s.values[-1]:.1f} docs/s"
            )
    return rows
