"""The packs a worker serves, loaded once per process and verified at load."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import onnxruntime as ort

from nightclerk.shared.errors import PackNotFound
from nightclerk.shared.logging import get_logger
from nightclerk.shared.manifest import read_manifest
from nightclerk.shared.settings import Settings
from nightclerk.workers.classifier import ClassifierRuntime
from nightclerk.workers.device import Placement, choose_placement
from nightclerk.workers.extractive import ExtractiveRuntime
from nightclerk.workers.generation.summarizer import SummarizerRuntime

log = get_logger(__name__)
R = TypeVar("R")
Summarizer = SummarizerRuntime | ExtractiveRuntime


class PackRegistry:
    def __init__(self, settings: Settings, placement: Placement | None = None) -> None:
        self.settings = settings
        self.placement = placement or choose_placement(settings.device, ort.get_available_providers())
        self._classifiers: dict[str, ClassifierRuntime] = {}
        self._summarizers: dict[str, Summarizer] = {}

    def classifier_for(self, kind: str) -> ClassifierRuntime:
        def load(path: Path) -> ClassifierRuntime:
            return ClassifierRuntime(
                path, self.placement, precision=self.settings.precision,
                threads=self.settings.intra_op_threads, token_budget=self.settings.batch_token_budget,
                max_batch_docs=self.settings.max_batch_docs,
            )  # fmt: skip

        return _cached(self._classifiers, self.settings.classify_packs, "classify", kind, self.settings, load)

    def summarizer_for(self, kind: str) -> Summarizer:
        def load(path: Path) -> Summarizer:
            if read_manifest(path).extractive is not None:  # a sentence classifier, batched like one
                return ExtractiveRuntime(
                    path, self.placement, precision=self.settings.precision,
                    threads=self.settings.intra_op_threads, token_budget=self.settings.batch_token_budget,
                    max_batch_docs=self.settings.max_batch_docs,
                )  # fmt: skip
            return SummarizerRuntime(
                path, self.placement, precision=self.settings.precision,
                threads=self.settings.intra_op_threads, max_batch_docs=self.settings.max_summary_batch_docs,
            )  # fmt: skip

        return _cached(
            self._summarizers, self.settings.summarize_packs, "summarize", kind, self.settings, load
        )

    def preload(self) -> list[str]:
        """Load every configured pack that exists; return ``task:kind`` for each one this worker can serve."""
        ready = []
        for task, packs, load in (
            ("classify", self.settings.classify_packs, self.classifier_for),
            ("summarize", self.settings.summarize_packs, self.summarizer_for),
        ):
            for kind in sorted(packs):
                try:
                    load(kind)
                except PackNotFound as exc:
                    log.warning("pack_missing", task=task, kind=kind, reason=str(exc))
                    continue
                ready.append(f"{task}:{kind}")
        return ready


def _cached(
    loaded: dict[str, R],
    packs: dict[str, str],
    task: str,
    kind: str,
    settings: Settings,
    load: Callable[[Path], R],
) -> R:
    """The runtime of the pack configured for ``task`` on ``kind``, loaded once per process."""
    name = packs.get(kind)
    if name is None:
        raise PackNotFound(f"no {task} pack is configured for kind {kind}")
    if name not in loaded:
        loaded[name] = load(settings.packs_dir / name)
    return loaded[name]
