"""A document into prompt token ids: the kind's template around the document, the document cut to a budget.

The template's two halves and the document are tokenized separately and joined, so the document can be cut
to exactly ``budget`` tokens without decoding and re-encoding it, and the template's own tokens (chat
markers such as ``<|im_start|>``) are never cut. The halves of each template, and the tokenizer's own
markers, are tokenized once per encoder, not once per document. A pack build's evaluation must prompt
through this same class, so that its figures describe what a worker does.
"""

from __future__ import annotations

from tokenizers import Tokenizer

from nightclerk.shared.text_budget import cut_to_words

TEXT_SLOT = "{text}"


class PromptEncoder:
    """``encode(template, text, budget)`` for one tokenizer (padding and truncation turned off).

    ``add_special_tokens`` puts the tokenizer's own markers around the whole prompt (T5's closing ``</s>``);
    chat templates carry theirs in the template.
    """

    def __init__(self, tokenizer: Tokenizer, *, add_special_tokens: bool = False) -> None:
        self.tokenizer = tokenizer
        self._around = special_tokens_around(tokenizer) if add_special_tokens else ([], [])
        self._templates: dict[str, tuple[list[int], list[int]]] = {}

    def encode(self, template: str, text: str, budget: int) -> list[int]:
        """Token ids of ``template`` with the document (cut to ``budget`` tokens) in its ``{text}`` slot."""
        head, tail = self._halves(template)
        document = self.tokenizer.encode(cut_to_words(text, budget), add_special_tokens=False).ids[:budget]
        opening, closing = self._around
        return [*opening, *head, *document, *tail, *closing]

    def _halves(self, template: str) -> tuple[list[int], list[int]]:
        halves = self._templates.get(template)
        if halves is None:
            before, after = template.split(TEXT_SLOT, 1)
            halves = self._templates[template] = (self._ids(before), self._ids(after))
        return halves

    def _ids(self, text: str) -> list[int]:
        return list(self.tokenizer.encode(text, add_special_tokens=False).ids) if text else []


def special_tokens_around(tokenizer: Tokenizer) -> tuple[list[int], list[int]]:
    """The ids the tokenizer's post-processor puts before and after a single sequence (T5: none, ``</s>``)."""
    plain = tokenizer.encode("x", add_special_tokens=False).ids
    marked = tokenizer.encode("x", add_special_tokens=True).ids
    for start in range(len(marked) - len(plain) + 1):
        if marked[start : start + len(plain)] == plain:
            return marked[:start], marked[start + len(plain) :]
    return [], []
