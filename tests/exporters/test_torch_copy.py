"""The PyTorch copy a build keeps: loaded back with plain transformers, it gives the module's logits."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from nightclerk.exporters.encoder import PooledClassifier, SentenceEmbedder, minilm_dir
from nightclerk.exporters.tiny import tiny_config
from nightclerk.exporters.torch_copy import HEAD_FILE, INFO_FILE, save_torch_copy

LABELS = ["bucket", "engine", "hydraulic"]


def _module() -> PooledClassifier:
    from transformers import BertModel

    torch.manual_seed(0)
    encoder = BertModel(tiny_config(), add_pooling_layer=False).eval()
    return PooledClassifier(SentenceEmbedder(encoder), nn.Linear(32, len(LABELS))).eval()


def test_copy_loads_back_with_transformers_and_matches(tmp_path: Path) -> None:
    from transformers import AutoModel, AutoTokenizer

    module = _module()
    pack_dir = tmp_path / "pack"
    pack_dir.mkdir()
    shutil.copyfile(minilm_dir() / "tokenizer.json", pack_dir / "tokenizer.json")
    dest = tmp_path / "torch" / "tiny"
    dest.mkdir(parents=True)
    (dest / "stale.bin").write_text("from an earlier build")
    save_torch_copy(
        module,
        dest,
        checkpoint_dir=minilm_dir(),
        pack_dir=pack_dir,
        pack="tiny",
        version="20261201-abc",
        labels=LABELS,
        max_tokens=32,
    )
    assert not (dest / "stale.bin").exists()
    info = json.loads((dest / INFO_FILE).read_text())
    assert (info["pack"], info["version"], info["labels"], info["max_tokens"]) == (
        "tiny",
        "20261201-abc",
        LABELS,
        32,
    )

    tokenizer = AutoTokenizer.from_pretrained(str(dest))
    encoder = AutoModel.from_pretrained(str(dest)).eval()
    head = load_file(str(dest / HEAD_FILE))
    batch = tokenizer(["hydraulic pump leak", "engine"], padding=True, return_tensors="pt")
    with torch.inference_mode():
        hidden = encoder(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).float()
        pooled = nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=1)
        logits = pooled @ head["weight"].T + head["bias"]
        expected = module(batch["input_ids"], batch["attention_mask"])
    torch.testing.assert_close(logits, expected, atol=1e-5, rtol=1e-5)


def test_only_a_pooled_classifier(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="PooledClassifier"):
        save_torch_copy(
            nn.Linear(2, 2),
            tmp_path / "x",
            checkpoint_dir=minilm_dir(),
            pack_dir=tmp_path,
            pack="x",
            version="v",
            labels=["a", "b"],
            max_tokens=8,
        )
