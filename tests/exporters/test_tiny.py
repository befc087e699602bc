from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from tokenizers import Tokenizer

from nightclerk.exporters.errors import BuildError
from nightclerk.exporters.tiny import build_tiny_pack
from nightclerk.shared.errors import PackIntegrityError
from nightclerk.shared.manifest import MANIFEST_FILE, read_manifest, verify_pack


def test_tiny_pack_builds_and_verifies(tiny_pack_dir: Path) -> None:
    manifest = verify_pack(tiny_pack_dir)
    assert manifest.name == "tiny-test"
    assert manifest.labels == ["bucket", "engine", "hydraulic"]
    assert manifest.max_tokens == 32
    assert manifest.inputs == ["input_ids", "attention_mask"]
    assert manifest.method == "random-init"
    variants = {v.precision: v for v in manifest.variants}
    assert variants["fp32"].batch_independent is True
    assert variants["int8"].batch_independent is False
    assert manifest.metrics["parity"]["fp32_max_abs_diff"] <= 1e-3


def test_manifest_hashes_every_file(tiny_pack_dir: Path) -> None:
    manifest = read_manifest(tiny_pack_dir)
    on_disk = {p.name for p in tiny_pack_dir.iterdir() if p.name != MANIFEST_FILE}
    assert set(manifest.files) == on_disk == {"tokenizer.json", "model.fp32.onnx", "model.int8.onnx"}


@pytest.mark.parametrize("name", ["model.fp32.onnx", "model.int8.onnx", "tokenizer.json"])
def test_tampering_one_byte_fails_verification(tiny_pack_copy: Path, name: str) -> None:
    path = tiny_pack_copy / name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(PackIntegrityError, match=name):
        verify_pack(tiny_pack_copy)


def test_missing_file_fails_verification(tiny_pack_copy: Path) -> None:
    (tiny_pack_copy / "model.int8.onnx").unlink()
    with pytest.raises(PackIntegrityError, match="missing"):
        verify_pack(tiny_pack_copy)


def test_onnx_contract_dynamic_batch_and_sequence(tiny_pack_dir: Path) -> None:
    """As the worker feeds it: tokenizer.json, truncation at max_tokens, zero padding, int64."""
    tokenizer = Tokenizer.from_file(str(tiny_pack_dir / "tokenizer.json"))
    assert tokenizer.padding is None
    assert tokenizer.truncation is not None and tokenizer.truncation["max_length"] == 32
    for variant in ("model.fp32.onnx", "model.int8.onnx"):
        session = ort.InferenceSession(str(tiny_pack_dir / variant), providers=["CPUExecutionProvider"])
        assert [i.name for i in session.get_inputs()] == ["input_ids", "attention_mask"]
        assert [o.name for o in session.get_outputs()] == ["logits"]
        for batch, length in ((1, 5), (3, 17), (7, 32)):
            ids = np.full((batch, length), 2000, dtype=np.int64)
            mask = np.ones_like(ids)
            mask[0, length // 2 :] = 0
            (logits,) = session.run(["logits"], {"input_ids": ids, "attention_mask": mask})
            assert logits.shape == (batch, 3)
            assert np.isfinite(logits).all()


def test_tiny_build_is_deterministic_and_replaces_in_place(tmp_path: Path) -> None:
    first = build_tiny_pack(tmp_path, "again", ["a", "b"], max_tokens=16, seed=3)
    second = build_tiny_pack(tmp_path, "again", ["a", "b"], max_tokens=16, seed=3)
    assert first.files == second.files
    assert [p.name for p in tmp_path.iterdir()] == ["again"]  # no staging or retired folders left
    verify_pack(tmp_path / "again")


def test_tiny_rejects_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(BuildError, match="labels"):
        build_tiny_pack(tmp_path, "x", ["only"])
    with pytest.raises(BuildError, match="max_tokens"):
        build_tiny_pack(tmp_path, "x", ["a", "b"], max_tokens=4)
    assert list(tmp_path.iterdir()) == []
