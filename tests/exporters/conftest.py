"""Fixtures for the exporter tests: one tiny pack per session (copy it before changing it)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

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
