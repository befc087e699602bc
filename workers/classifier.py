"""A loaded classification pack: tokenizer + ONNX Runtime session, batched inference with timings."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

from nightclerk.shared.errors import ConfigError, InferenceError
from nightclerk.shared.logging import get_logger
from nightclerk.shared.manifest import TOKENIZER_FILE, PackManifest, Variant, verify_pack
from nightclerk.shared.text_budget import cut_to_words
from nightclerk.workers.batching import pad_rows, plan_batches
from nightclerk.workers.device import Placement, cpu_count
from nightclerk.workers.variant_choice import Choice, fastest, probe_feeds

log = get_logger(__name__)
# A batch takes no document shorter than 3/4 of its longest. A chunk of 64 work orders (5-21 tokens) padded
# as one batch cost 1.75x its real tokens, split this way 1.13x: 376 -> 496 docs/s chunk by chunk here.
MIN_FILL = 0.75


@dataclass(frozen=True)
class Classified:
    """Per input text: label probabilities (in manifest label order) and its share of the batch's time."""

    probabilities: np.ndarray  # (n_docs, n_labels) float32
    tokenize_ms: np.ndarray  # (n_docs,)
    infer_ms: np.ndarray  # (n_docs,)


def choose_variant(
    manifest: PackManifest,
    placement: Placement,
    precision: str,
    *,
    cpu_preference: tuple[str, ...] = ("int8", "fp32"),
) -> Variant:
    if precision != "auto":
        variant = manifest.variant(precision)
        if variant is None:
            have = [v.precision for v in manifest.variants]
            raise ConfigError(f"pack {manifest.name} has no {precision} variant (it has {have})")
        return variant
    preference = ("fp16", "fp32", "int8") if placement.device == "cuda" else cpu_preference
    for wanted in preference:
        variant = manifest.variant(wanted)
        if variant is not None and variant.device in ("any", placement.device):
            return variant
    raise ConfigError(f"pack {manifest.name} has no variant usable on {placement.device}")


def auto_candidates(manifest: PackManifest, placement: Placement, precision: str) -> list[Variant]:
    """The variants ``auto`` chooses between by measuring: every CPU one, on a CPU (none elsewhere)."""
    if precision != "auto" or placement.device != "cpu":
        return []
    return [v for v in manifest.variants if v.device in ("any", "cpu") and v.precision in ("int8", "fp32")]


def session_options(placement: Placement, threads: int) -> ort.SessionOptions:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    # Thread counts set deliberately: ORT's default spin-waiting collapses when another process shares cores.
    options.intra_op_num_threads = threads or (1 if placement.device == "cuda" else cpu_count())
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return options


class ClassifierRuntime:
    task = "classify"

    def __init__(
        self,
        pack_dir: Path,
        placement: Placement,
        *,
        precision: str = "auto",
        threads: int = 0,
        token_budget: int = 8192,
        max_batch_docs: int = 64,
        max_tokens: int | None = None,
    ) -> None:
        """``max_tokens``: truncate there instead of at the pack's ``max_tokens`` (the benchmark's 256)."""
        self.manifest = verify_pack(pack_dir, task=self.task)
        self.max_tokens = max_tokens or self.manifest.max_tokens
        self.placement = placement
        self.token_budget = token_budget
        self.max_batch_docs = max_batch_docs
        self.tokenizer = Tokenizer.from_file(str(pack_dir / TOKENIZER_FILE))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(max_length=self.max_tokens)

        def load(variant: Variant) -> ort.InferenceSession:
            return ort.InferenceSession(
                str(pack_dir / variant.file),
                sess_options=session_options(placement, threads),
                providers=placement.providers,
            )

        self.measured_s: dict[str, float] = {}  # precision -> best probe time, when auto measured
        candidates = auto_candidates(self.manifest, placement, precision)
        choice = self._measure(candidates, load) if len(candidates) > 1 else None
        if choice is not None:
            self.variant, self.session = choice.variant, choice.session
            self.measured_s = choice.seconds
        else:
            self.variant = choose_variant(self.manifest, placement, precision)
            self.session = load(self.variant)
        self.provider = self.session.get_providers()[0]
        self.labels = list(self.manifest.labels)
        self._wants = set(self.manifest.inputs)
        log.info(
            "pack_loaded",
            pack=self.manifest.name,
            version=self.manifest.version,
            precision=self.variant.precision,
            provider=self.provider,
            device=placement.device,
            max_tokens=self.max_tokens,
        )

    def _measure(self, candidates: list[Variant], load: Callable[[Variant], Any]) -> Choice | None:
        """The fastest candidate; None (the static choice follows) when one cannot even run the probe --
        that is for inference, with its isolation of bad documents, to report, not for the load."""
        feeds = probe_feeds(self.manifest, self.max_tokens)
        try:
            choice = fastest(candidates, load, self.manifest.output, feeds)
        except Exception as exc:  # onnxruntime raises its own types
            log.warning("variant_probe_failed", pack=self.manifest.name, error=type(exc).__name__)
            return None
        log.info(
            "variant_measured",
            pack=self.manifest.name,
            chosen=choice.variant.precision,
            **{f"{p}_ms": round(s * 1000, 1) for p, s in choice.seconds.items()},
        )
        return choice

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def version(self) -> str:
        return self.manifest.version

    def encode(self, texts: list[str]) -> list[list[int]]:
        """Token ids per text: cut to a word budget first (the tokenizer reads the whole text otherwise)."""
        cut = [cut_to_words(text, self.max_tokens) for text in texts]
        try:
            encodings = self.tokenizer.encode_batch(cut, add_special_tokens=True)
        except Exception as exc:  # the tokenizer's message may quote the text: keep only its type
            raise InferenceError(f"pack {self.name}: tokenization failed: {type(exc).__name__}") from None
        return [encoding.ids for encoding in encodings]

    def batches(self, encoded: list[list[int]]) -> list[list[int]]:
        lengths = [len(ids) for ids in encoded]
        return plan_batches(lengths, self.token_budget, self.max_batch_docs, min_fill=MIN_FILL)

    def feeds(self, encoded: list[list[int]], batch: list[int]) -> dict[str, np.ndarray]:
        """The session's inputs for one batch, padded on the right."""
        ids, mask = pad_rows([encoded[i] for i in batch], 0, left=False)
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._wants:
            feeds["token_type_ids"] = np.zeros_like(ids)
        return feeds

    def classify(self, texts: list[str]) -> Classified:
        n = len(texts)
        probabilities = np.zeros((n, len(self.labels)), dtype=np.float32)
        tokenize_ms = np.zeros(n)
        infer_ms = np.zeros(n)
        if n == 0:
            return Classified(probabilities, tokenize_ms, infer_ms)

        started = time.perf_counter()
        encoded = self.encode(texts)
        tokenize_ms[:] = (time.perf_counter() - started) * 1000 / n
        for batch in self.batches(encoded):
            feeds = self.feeds(encoded, batch)
            started = time.perf_counter()
            try:
                (logits,) = self.session.run([self.manifest.output], feeds)
            except Exception as exc:  # onnxruntime raises its own types; keep the ids, not the text
                raise InferenceError(
                    f"pack {self.name}: inference failed on a batch of {len(batch)}: {type(exc).__name__}"
                ) from None
            infer_ms[batch] = (time.perf_counter() - started) * 1000 / len(batch)
            probabilities[batch] = _softmax(np.asarray(logits, dtype=np.float32))
        return Classified(probabilities, tokenize_ms, infer_ms)


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    result: np.ndarray = exp / exp.sum(axis=1, keepdims=True)
    return result
