"""The summarize pack runtime: prompts per kind, budgets, batches, reasons instead of crashes."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from tokenizers import Tokenizer

from nightclerk.exporters.encoder import minilm_dir
from nightclerk.exporters.tiny import sample_texts
from nightclerk.shared.errors import PackIntegrityError, PackInvalid
from nightclerk.workers.device import Placement
from nightclerk.workers.generation.prompting import PromptEncoder
from nightclerk.workers.generation.search import generate
from nightclerk.workers.generation.summarizer import EMPTY_TEXT, SummarizerRuntime

CPU = Placement("cpu", ["CPUExecutionProvider"])
TEXTS = sample_texts(6, seed=3)


def test_summaries_are_the_generated_tokens_decoded(tiny_summarizer: Path) -> None:
    runtime = SummarizerRuntime(tiny_summarizer, CPU, precision="fp32")
    kinds = ["ehr_note", "literature", "repair_ticket", "ehr_note", "literature", "ehr_note"]
    out = runtime.summarize(TEXTS, kinds)
    for text, kind, summary, new in zip(TEXTS, kinds, out.summaries, out.new_tokens, strict=True):
        tokens = generate(runtime.model, [runtime.prompt(text, kind)], runtime.settings)[0]
        assert new == len(tokens) and 0 < new <= runtime.spec.max_new_tokens
        words = [t for t in tokens if t not in runtime.spec.eos_token_ids]
        assert summary == runtime.tokenizer.decode(words, skip_special_tokens=True).strip()
    assert runtime.prompt(TEXTS[0], "literature") != runtime.prompt(TEXTS[0], "ehr_note")  # per-kind prompts
    assert all(out.reasons[i] is None for i in range(len(TEXTS)))


def test_batched_equals_one_by_one(tiny_summarizer: Path) -> None:
    runtime = SummarizerRuntime(tiny_summarizer, CPU, precision="fp32", max_batch_docs=4)
    kinds = ["ehr_note"] * len(TEXTS)
    together = runtime.summarize(TEXTS, kinds).summaries
    alone = [runtime.summarize([text], ["ehr_note"]).summaries[0] for text in TEXTS]
    assert together == alone


def test_empty_long_and_foreign_texts_get_a_summary_or_a_reason(tiny_summarizer: Path) -> None:
    runtime = SummarizerRuntime(tiny_summarizer, CPU)  # int8 on the CPU
    texts = ["", "   \n", "pump " * 20_000, "Le patient présente une douleur — 患者 😀", TEXTS[0]]
    out = runtime.summarize(texts, ["ehr_note"] * len(texts))
    assert out.reasons[:2] == [EMPTY_TEXT, EMPTY_TEXT] and out.summaries[:2] == [None, None]
    assert all(s is not None for s in out.summaries[2:])
    template_tokens = len(runtime.prompt("", "ehr_note"))
    assert out.prompt_tokens[2] == runtime.spec.max_input_tokens + template_tokens  # cut, not refused
    assert max(out.new_tokens) <= runtime.spec.max_new_tokens


def test_a_tampered_summarize_pack_is_refused(
    tiny_summarizer: Path, tmp_path: Path, flip_a_byte: Callable[[Path], None]
) -> None:
    pack = tmp_path / "tampered"
    shutil.copytree(tiny_summarizer, pack)
    flip_a_byte(pack / "decoder.fp32.onnx")
    with pytest.raises(PackIntegrityError, match=r"decoder\.fp32\.onnx"):
        SummarizerRuntime(pack, CPU)


def test_a_classifier_pack_is_not_a_summarizer(tiny_packs: Path) -> None:
    with pytest.raises(PackInvalid, match="classify pack, not a summarize pack"):
        SummarizerRuntime(tiny_packs / "ehr-specialty", CPU)


def test_prompt_keeps_the_template_and_cuts_only_the_document() -> None:
    tokenizer = Tokenizer.from_file(str(minilm_dir() / "tokenizer.json"))
    tokenizer.no_truncation()
    tokenizer.no_padding()  # the MiniLM file pads to 128; the runtime turns both off the same way
    template = "summarize : {text} . summary :"
    ids = PromptEncoder(tokenizer).encode(template, "cardiac " * 300, 16)
    head = tokenizer.encode("summarize :", add_special_tokens=False).ids
    tail = tokenizer.encode(". summary :", add_special_tokens=False).ids
    assert ids[: len(head)] == head and ids[-len(tail) :] == tail
    assert len(ids) == len(head) + 16 + len(tail)
    marked = PromptEncoder(tokenizer, add_special_tokens=True).encode(template, "cardiac", 16)
    cls, sep = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    assert (
        marked[0] == cls
        and marked[-1] == sep
        and marked[1:-1] == PromptEncoder(tokenizer).encode(template, "cardiac", 16)
    )


def test_auto_precision_on_cpu_prefers_int8_and_fp32_is_there_when_asked(tiny_summarizer: Path) -> None:
    assert SummarizerRuntime(tiny_summarizer, CPU).variant.precision == "int8"
    assert SummarizerRuntime(tiny_summarizer, CPU, precision="fp32").variant.precision == "fp32"
