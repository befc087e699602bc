"""A loaded summarize pack: prompts per document kind, length-sorted batches, generation, decoded text.

A document that cannot be summarized (empty text, or nothing generated) gets a reason instead of a summary;
it never stops the rest of its batch. Text beyond the pack's input budget is cut, never an error, and every
output is bounded by ``max_new_tokens``, so a prompt that makes the model loop still ends.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from nightclerk.shared.errors import InferenceError, PackInvalid
from nightclerk.shared.generation_io import DECODER_GRAPH, DECODER_WITH_PAST_GRAPH, ENCODER_GRAPH
from nightclerk.shared.logging import get_logger
from nightclerk.shared.manifest import TOKENIZER_FILE, GenerationSpec, verify_pack
from nightclerk.workers.batching import plan_batches
from nightclerk.workers.classifier import choose_variant
from nightclerk.workers.device import Placement
from nightclerk.workers.generation.decoder_only import DecoderOnlyModel
from nightclerk.workers.generation.graphs import GraphRunner, RowPicker
from nightclerk.workers.generation.prompting import PromptEncoder
from nightclerk.workers.generation.search import StepModel, generate
from nightclerk.workers.generation.seq2seq import Seq2SeqModel
from nightclerk.workers.generation.settings import DecodeSettings

log = get_logger(__name__)

EMPTY_TEXT = "empty text"
NOTHING_GENERATED = "the model generated no text"


@dataclass(frozen=True)
class Summarized:
    """Per input text: the summary or the reason there is none, token counts and its share of the time."""

    summaries: list[str | None]
    reasons: list[str | None]
    prompt_tokens: np.ndarray  # (n,)
    new_tokens: np.ndarray  # (n,)
    generate_ms: np.ndarray  # (n,)


def decode_settings(spec: GenerationSpec) -> DecodeSettings:
    return DecodeSettings(
        max_new_tokens=spec.max_new_tokens,
        num_beams=spec.num_beams,
        eos_token_ids=tuple(spec.eos_token_ids),
        pad_token_id=spec.pad_token_id,
        repetition_penalty=spec.repetition_penalty,
        no_repeat_ngram_size=spec.no_repeat_ngram_size,
    )


class SummarizerRuntime:
    task = "summarize"

    def __init__(
        self,
        pack_dir: Path,
        placement: Placement,
        *,
        precision: str = "auto",
        threads: int = 0,
        token_budget: int = 16384,
        max_batch_docs: int = 32,
    ) -> None:
        self.manifest = verify_pack(pack_dir, task=self.task)
        assert self.manifest.generation is not None  # the manifest validator requires it for summarize
        self.spec = self.manifest.generation
        # int8 first on CPU, as for classify: the build ships it only within its ROUGE-L gate, and it
        # generated 1.8-2x fp32's tokens/s (README, Speed); NIGHTCLERK_PRECISION=fp32 picks fp32
        self.variant = choose_variant(self.manifest, placement, precision)
        graphs = self.variant.graphs or {DECODER_GRAPH: self.variant.file}
        picker = RowPicker(placement)

        def runner(graph: str) -> GraphRunner:
            if graph not in graphs:
                raise PackInvalid(
                    f"pack {self.manifest.name}: variant {self.variant.precision} has no {graph}"
                )
            return GraphRunner(pack_dir / graphs[graph], placement, threads=threads)

        self.model: StepModel
        if self.spec.layout == "decoder-only":
            self.model = DecoderOnlyModel(runner(DECODER_GRAPH), picker, self.spec.pad_token_id)
        else:
            assert self.spec.decoder_start_token_id is not None  # the manifest validator checks it
            self.model = Seq2SeqModel(
                runner(ENCODER_GRAPH), runner(DECODER_GRAPH), runner(DECODER_WITH_PAST_GRAPH), picker,
                decoder_start_token_id=self.spec.decoder_start_token_id, pad_token_id=self.spec.pad_token_id,
            )  # fmt: skip
        self.tokenizer = Tokenizer.from_file(str(pack_dir / TOKENIZER_FILE))
        self.tokenizer.no_padding()
        self.tokenizer.no_truncation()
        self.prompts = PromptEncoder(self.tokenizer, add_special_tokens=self.spec.layout == "encoder-decoder")
        self.settings = decode_settings(self.spec)
        self.token_budget = token_budget
        self.max_batch_docs = max_batch_docs
        log.info(
            "pack_loaded",
            pack=self.manifest.name,
            version=self.manifest.version,
            precision=self.variant.precision,
            layout=self.spec.layout,
            device=placement.device,
            max_input_tokens=self.spec.max_input_tokens,
            max_new_tokens=self.spec.max_new_tokens,
        )

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def version(self) -> str:
        return self.manifest.version

    def prompt(self, text: str, kind: str) -> list[int]:
        return self.prompts.encode(self.spec.prompt_for(kind), text, self.spec.max_input_tokens)

    def summarize(self, texts: Sequence[str], kinds: Sequence[str]) -> Summarized:
        n = len(texts)
        summaries: list[str | None] = [None] * n
        reasons: list[str | None] = [None] * n
        prompt_tokens, new_tokens, generate_ms = (
            np.zeros(n, dtype=np.int64),
            np.zeros(n, dtype=np.int64),
            np.zeros(n),
        )
        prompts: dict[int, list[int]] = {}
        for index, (text, kind) in enumerate(zip(texts, kinds, strict=True)):
            if not text.strip():
                reasons[index] = EMPTY_TEXT
                continue
            try:
                prompts[index] = self.prompt(text, kind)
            except Exception as exc:  # the tokenizer's message may quote the text: keep only its type
                raise InferenceError(f"pack {self.name}: tokenization failed: {type(exc).__name__}") from None
            prompt_tokens[index] = len(prompts[index])
        indices = sorted(prompts)
        # memory grows with prompt + generated tokens: plan batches on both
        lengths = [len(prompts[i]) + self.settings.max_new_tokens for i in indices]
        stop = set(self.settings.eos_token_ids)
        for batch in plan_batches(lengths, self.token_budget, self.max_batch_docs):
            members = [indices[b] for b in batch]
            started = time.perf_counter()
            outputs = generate(self.model, [prompts[i] for i in members], self.settings)
            generate_ms[members] = (time.perf_counter() - started) * 1000 / len(members)
            for index, tokens in zip(members, outputs, strict=True):
                new_tokens[index] = len(tokens)
                text = self.tokenizer.decode([t for t in tokens if t not in stop], skip_special_tokens=True)
                summaries[index] = text.strip() or None
                if summaries[index] is None:
                    reasons[index] = NOTHING_GENERATED
        return Summarized(summaries, reasons, prompt_tokens, new_tokens, generate_ms)
