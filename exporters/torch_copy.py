"""Keep a pack's fine-tuned PyTorch weights beside it, as a Hugging Face folder anyone can load.

Workers never read it (they run the pack's ONNX). It is there for whoever wants the same model in
``transformers``: the benchmark's naive build (a Celery task per document running a ``transformers``
pipeline) loads it, so both sides run the same weights. The encoder is saved with ``save_pretrained``;
the pooling (mean under the attention mask, L2-normalized) and the linear head are not a ``transformers``
architecture, so the head goes to ``head.safetensors`` and ``torch_copy.json`` says how to apply it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, cast

from torch import nn

from nightclerk.exporters.encoder import PooledClassifier

HEAD_FILE = "head.safetensors"
INFO_FILE = "torch_copy.json"
# what AutoTokenizer reads from a folder; tokenizer.json comes from the pack (its truncation is the pack's)
_TOKENIZER_EXTRAS = ("tokenizer_config.json", "special_tokens_map.json", "vocab.txt")


def save_torch_copy(
    module: nn.Module,
    dest: Path,
    *,
    checkpoint_dir: Path,
    pack_dir: Path,
    pack: str,
    version: str,
    labels: list[str],
    max_tokens: int,
) -> Path:
    """Write ``dest`` (replacing what was there): encoder, tokenizer, head and what ties them to the pack."""
    from safetensors.torch import save_file

    if not isinstance(module, PooledClassifier):
        raise TypeError(f"expected a PooledClassifier, got {type(module).__name__}")
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    cast(Any, module.embedder.encoder).save_pretrained(str(dest))
    shutil.copyfile(pack_dir / "tokenizer.json", dest / "tokenizer.json")
    for name in _TOKENIZER_EXTRAS:
        if (checkpoint_dir / name).is_file():
            shutil.copyfile(checkpoint_dir / name, dest / name)
    head = module.head
    save_file(
        {"weight": head.weight.detach().contiguous(), "bias": head.bias.detach().contiguous()},
        str(dest / HEAD_FILE),
    )
    info = {
        "pack": pack,
        "version": version,
        "labels": labels,
        "max_tokens": max_tokens,
        "pooling": "mean of the last hidden state under the attention mask, then L2-normalized",
        "head": HEAD_FILE,
    }
    (dest / INFO_FILE).write_text(json.dumps(info, indent=2) + "\n")
    return dest
