"""Summary pairs -> fine-tuning examples: prompt ids exactly as a worker builds them, and the summary's ids.

The prompt goes through the worker's :class:`~nightclerk.workers.generation.prompting.PromptEncoder` with the
pack's template and input budget, so a fine-tune never sees a prompt the worker would not send.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from tokenizers import Tokenizer

from nightclerk.exporters.errors import TrainingDataError
from nightclerk.exporters.generation.lora import Example
from nightclerk.exporters.generation.summary_data import SummaryPair
from nightclerk.shared.manifest import template_for
from nightclerk.workers.generation.prompting import PromptEncoder


def build_examples(
    pairs: Sequence[SummaryPair],
    tokenizer_file: Path,
    prompts: Mapping[str, str],
    *,
    max_input_tokens: int,
    max_target_tokens: int,
    stop_id: int,
) -> list[Example]:
    """One example per pair; a summary longer than ``max_target_tokens`` is cut (its stop token kept)."""
    if not prompts:
        raise TrainingDataError("no prompt templates given")
    tokenizer = Tokenizer.from_file(str(tokenizer_file))
    tokenizer.no_padding()
    tokenizer.no_truncation()
    encoder = PromptEncoder(tokenizer)
    examples = []
    for pair in pairs:
        prompt = encoder.encode(template_for(prompts, pair.kind), pair.text, max_input_tokens)
        target = tokenizer.encode(pair.reference, add_special_tokens=False).ids[: max_target_tokens - 1]
        examples.append(
            Example(
                prompt=prompt,
                target=[*target, stop_id],
                part=pair.part,
                kind=pair.kind,
                reference=pair.reference,
            )
        )
    return examples
