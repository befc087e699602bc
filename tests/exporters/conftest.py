"""Fixtures for the exporter tests: one tiny pack per session (copy it before changing it)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

TINY_LABELS = ["bucket", "engine", "hydraulic"]


@pytest.fixture(scope="session")
def tiny_pack_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from nightclerk.exporters.tiny import build_tiny_pack

    out = tmp_path_factory.mktemp("packs")
    build_tiny_pack(out, "tiny-test", TINY_LABELS, max_tokens=32, seed=0)
    return out / "tiny-test"


@pytest.fixture
def tiny_pack_copy(tiny_pack_dir: Path, tmp_path: Path) -> Path:
    target = tmp_path / "packs" / tiny_pack_dir.name
    shutil.copytree(tiny_pack_dir, target)
    return target


@pytest.fixture(scope="session")
def tiny_variants(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Path, list[list[int]]]:
    """A tiny classifier, its gated ONNX variants and the encoded sample texts (do not modify them)."""
    from nightclerk.exporters.encoder import minilm_dir
    from nightclerk.exporters.tiny import TINY_SHAPE, sample_texts, tiny_classifier
    from nightclerk.exporters.tokens import encode, load_tokenizer
    from nightclerk.exporters.variants import build_variants

    module = tiny_classifier(3, seed=2)
    folder = tmp_path_factory.mktemp("variants")
    encoded = encode(load_tokenizer(minilm_dir() / "tokenizer.json", 32), sample_texts(), 32)
    build_variants(module, folder, TINY_SHAPE, encoded, min_int8_agreement=None, threads=1)
    return module, folder, encoded


@pytest.fixture(scope="session")
def tiny_summarizer_pack(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from nightclerk.exporters.generation.tiny_pack import build_tiny_summarizer

    out = tmp_path_factory.mktemp("summarizer-packs")
    build_tiny_summarizer(out, "tiny-summarizer")
    return out / "tiny-summarizer"
