"""--base checks: a missing or corrupt checkpoint fails in about a second, with a typed error."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from nightclerk.exporters.checkpoint import DEFAULT_SOURCE, check_checkpoint
from nightclerk.exporters.errors import BuildError, CheckpointInvalid, CheckpointNotFound
from nightclerk.exporters.tiny import TINY_SHAPE, save_tiny_checkpoint


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_checkpoint(tmp_path_factory.mktemp("base") / "tiny")


@pytest.fixture
def base_copy(tiny_base: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(tiny_base, tmp_path / "base"))


def test_default_and_tiny_checkpoints_pass(tiny_base: Path) -> None:
    default = check_checkpoint(None, 128)
    assert default.source == DEFAULT_SOURCE and default.num_layers == 6 and default.hidden_size == 384
    tiny = check_checkpoint(tiny_base, 64)
    assert (tiny.hidden_size, tiny.num_heads, tiny.num_layers) == (32, 2, TINY_SHAPE.num_layers)
    assert str(tiny_base.resolve()) in tiny.source and tiny.weights_sha256[:16] in tiny.source


def test_missing_pieces(base_copy: Path, tmp_path: Path) -> None:
    with pytest.raises(CheckpointNotFound, match="no checkpoint folder"):
        check_checkpoint(tmp_path / "nowhere", 64)
    (base_copy / "tokenizer.json").unlink()
    with pytest.raises(CheckpointNotFound, match=r"tokenizer\.json"):
        check_checkpoint(base_copy, 64)
    (base_copy / "model.safetensors").unlink()
    with pytest.raises(CheckpointNotFound, match="safetensors"):
        check_checkpoint(base_copy, 64)
    (base_copy / "config.json").unlink()
    with pytest.raises(CheckpointNotFound, match=r"config\.json"):
        check_checkpoint(base_copy, 64)


def test_truncated_weights(base_copy: Path) -> None:
    weights = base_copy / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(CheckpointInvalid, match="corrupt or truncated"):
        check_checkpoint(base_copy, 64)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"model_type": "gpt2"}, "not a BERT-family"),
        ({"hidden_size": "big"}, "non-positive"),
        ({"num_attention_heads": 5}, "multiple"),
    ],
)
def test_bad_config(base_copy: Path, change: dict[str, object], message: str) -> None:
    path = base_copy / "config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **change}), encoding="utf-8")
    with pytest.raises(CheckpointInvalid, match=message):
        check_checkpoint(base_copy, 64)


def test_unreadable_config_and_tokenizer_and_too_many_tokens(base_copy: Path) -> None:
    with pytest.raises(CheckpointInvalid, match="positions"):
        check_checkpoint(base_copy, 1024)
    (base_copy / "tokenizer.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(CheckpointInvalid, match="does not load"):
        check_checkpoint(base_copy, 64)
    (base_copy / "config.json").write_text("[1, 2", encoding="utf-8")
    with pytest.raises(CheckpointInvalid, match="JSON"):
        check_checkpoint(base_copy, 64)
    assert issubclass(CheckpointInvalid, BuildError) and issubclass(CheckpointNotFound, BuildError)
