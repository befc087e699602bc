from __future__ import annotations

from nightclerk.exporters.encoder import minilm_dir
from nightclerk.exporters.tokens import batch_indices, encode, load_tokenizer, pad


def test_encode_truncates_without_padding() -> None:
    tokenizer = load_tokenizer(minilm_dir() / "tokenizer.json", 16)
    short, long = encode(tokenizer, ["knee pain", "word " * 100], 16)
    assert short[0] == 101 and short[-1] == 102 and len(short) == 4
    assert len(long) == 16 and long[-1] == 102


def test_pad_and_batches() -> None:
    ids, mask = pad([[1, 2, 3], [4]])
    assert ids.tolist() == [[1, 2, 3], [4, 0, 0]] and mask.tolist() == [[1, 1, 1], [1, 0, 0]]
    assert str(ids.dtype) == "int64"
    encoded = [[1] * n for n in (2, 9, 4, 7, 1)]
    assert batch_indices(encoded, 2) == [[1, 3], [2, 0], [4]]
    shuffled = batch_indices(encoded, 2, shuffle_seed=1)
    assert sorted(i for b in shuffled for i in b) == [0, 1, 2, 3, 4]
    assert shuffled == batch_indices(encoded, 2, shuffle_seed=1)
