"""Tiny random generation models, exported once per session, with their PyTorch originals for parity."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@dataclass(frozen=True)
class Exported:
    model: Any  # the torch model the graphs came from
    graphs: dict[str, Path]


@pytest.fixture(scope="session")
def tiny_decoder(tmp_path_factory: pytest.TempPathFactory) -> Exported:
    from nightclerk.exporters.generation.decoder_export import export_decoder, tiny_llama

    model = tiny_llama(seed=0)
    path = export_decoder(model, tmp_path_factory.mktemp("llama") / "decoder.onnx")
    return Exported(model, {"decoder": path})


@pytest.fixture(scope="session", params=["t5", "bart"])
def tiny_seq2seq(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Exported:
    from nightclerk.exporters.generation.seq2seq_export import export_seq2seq, tiny_bart, tiny_t5

    model = (tiny_t5 if request.param == "t5" else tiny_bart)(seed=0)
    return Exported(model, export_seq2seq(model, tmp_path_factory.mktemp(request.param)))


@pytest.fixture(scope="session")
def tiny_summarizer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from nightclerk.exporters.generation.tiny_pack import build_tiny_summarizer

    out = tmp_path_factory.mktemp("summarizer-packs")
    build_tiny_summarizer(out, "tiny-summarizer")
    return out / "tiny-summarizer"
