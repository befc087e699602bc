"""A document into prompt token ids: the kind's template around the document, the document cut to a budget.

The template's two halves and the document are tokenized separately and joined, so the document can be cut
to exactly ``budget`` tokens without decoding and re-encoding it, and the template's own tokens (chat
markers such as ``<|im_start|>``) are never cut. Exporters build their evaluation prompts with this same
function, so the figures in a manifest describe what a worker does.
"""

from __future__ import annotations

from tokenizers import Tokenizer

from nightclerk.shared.text_budget import cut_to_words

TEXT_SLOT = "{text}"


def encode_prompt(
    tokenizer: Tokenizer, template: str, text: str, budget: int, *, add_special_tokens: bool = False
) -> list[int]:
    """Token ids of ``template`` with the document (cut to ``budget`` tokens) in its ``{text}`` slot.

    ``tokenizer`` must have padding and truncation turned off (as the worker loads it).

    ``add_special_tokens`` adds the tokenizer's own markers around the whole (T5's closing ``</s>``);
    chat templates carry theirs in the template.
    """
    before, after = template.split(TEXT_SLOT, 1)
    document = tokenizer.encode(cut_to_words(text, budget), add_special_tokens=False).ids[:budget]
    head = tokenizer.encode(before, add_special_tokens=False).ids if before else []
    tail = tokenizer.encode(after, add_special_tokens=False).ids if after else []
    ids = [*head, *document, *tail]
    if add_special_tokens:
        opening, closing = special_tokens_around(tokenizer)
        ids = [*opening, *ids, *closing]
    return ids


def special_tokens_around(tokenizer: Tokenizer) -> tuple[list[int], list[int]]:
    """The ids the tokenizer's post-processor puts before and after a single sequence (T5: none, ``</s>``)."""
    plain = tokenizer.encode("x", add_special_tokens=False).ids
    marked = tokenizer.encode("x", add_special_tokens=True).ids
    for start in range(len(marked) - len(plain) + 1):
        if marked[start : start + len(plain)] == plain:
            return marked[:start], marked[start + len(plain) :]
    return [], []
