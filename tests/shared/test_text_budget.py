from __future__ import annotations

from nightclerk.shared.text_budget import cut_to_words


def test_cut_to_words_keeps_the_first_words() -> None:
    assert cut_to_words("a  b\nc d e", 3) == "a b c"
    assert cut_to_words("short text", 10) == "short text"
    assert cut_to_words("", 5) == ""
