"""How to decode: one frozen object, checked when it is made (a bad value fails before any model runs)."""

from __future__ import annotations

from dataclasses import dataclass

from nightclerk.shared.errors import ConfigError


@dataclass(frozen=True)
class DecodeSettings:
    max_new_tokens: int = 64
    num_beams: int = 1  # 1: greedy
    eos_token_ids: tuple[int, ...] = ()
    pad_token_id: int = 0
    repetition_penalty: float = 1.0  # >1 discourages tokens already in the prompt or the output
    no_repeat_ngram_size: int = 0  # 0: off; n: an n-gram of the sequence never appears twice
    length_penalty: float = 1.0  # beam search: finished scores are divided by length ** length_penalty
    early_stopping: bool = False  # beam search: stop once num_beams hypotheses are finished

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise ConfigError(f"max_new_tokens must be at least 1, got {self.max_new_tokens}")
        if self.num_beams < 1:
            raise ConfigError(f"num_beams must be at least 1, got {self.num_beams}")
        if self.repetition_penalty <= 0:
            raise ConfigError(f"repetition_penalty must be positive, got {self.repetition_penalty}")
        if self.no_repeat_ngram_size < 0:
            raise ConfigError(f"no_repeat_ngram_size must be 0 or more, got {self.no_repeat_ngram_size}")
