from __future__ import annotations

from pathlib import Path

import pytest
from tokenizers import Tokenizer

from nightclerk.exporters.errors import TrainingDataError
from nightclerk.exporters.generation.summary_data import SummaryPair
from nightclerk.exporters.generation.summary_examples import build_examples
from nightclerk.exporters.generation.tiny_pack import TINY_PROMPTS, tiny_tokenizer
from nightclerk.workers.generation.prompting import PromptEncoder

STOP = 2


@pytest.fixture(scope="module")
def tokenizer_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tok") / "tokenizer.json"
    tiny_tokenizer().save(str(path))
    return path


def test_prompts_are_the_workers_prompts_and_targets_end_with_the_stop_token(tokenizer_file: Path) -> None:
    pairs = [
        SummaryPair("the patient has pain in the knee " * 20, "knee pain", "ehr_note"),
        SummaryPair("the trial of the drug", "a drug trial", "literature"),
    ]
    examples = build_examples(
        pairs, tokenizer_file, TINY_PROMPTS, max_input_tokens=10, max_target_tokens=8, stop_id=STOP
    )
    tokenizer = Tokenizer.from_file(str(tokenizer_file))
    encoder = PromptEncoder(tokenizer)
    # ehr_note has no template of its own: the worker falls back to "default", and so must training
    assert examples[0].prompt == encoder.encode(TINY_PROMPTS["default"], pairs[0].text, 10)
    assert examples[1].prompt == encoder.encode(TINY_PROMPTS["literature"], pairs[1].text, 10)
    for example, pair in zip(examples, pairs, strict=True):
        assert example.target[-1] == STOP
        assert example.target[:-1] == tokenizer.encode(pair.reference, add_special_tokens=False).ids
        assert (example.part, example.kind, example.reference) == (pair.part, pair.kind, pair.reference)


def test_long_references_are_cut_keeping_the_stop_token(tokenizer_file: Path) -> None:
    pair = SummaryPair("the patient", "the patient has pain in the knee and the hip", "literature")
    [example] = build_examples(
        [pair], tokenizer_file, TINY_PROMPTS, max_input_tokens=10, max_target_tokens=4, stop_id=STOP
    )
    assert len(example.target) == 4 and example.target[-1] == STOP


def test_no_templates_is_an_error(tokenizer_file: Path) -> None:
    with pytest.raises(TrainingDataError, match="no prompt"):
        build_examples([], tokenizer_file, {}, max_input_tokens=4, max_target_tokens=4, stop_id=STOP)
