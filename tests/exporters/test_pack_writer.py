from __future__ import annotations

from pathlib import Path

import pytest

from nightclerk.exporters.errors import BuildError, OutputNotWritable
from nightclerk.exporters.pack_writer import PackWriter, check_name, check_writable
from nightclerk.shared.manifest import Variant, sha256_file, verify_pack


def _commit(pack: PackWriter) -> None:
    (pack.dir / "tokenizer.json").write_text("{}", encoding="utf-8")
    (pack.dir / "model.fp32.onnx").write_bytes(b"onnx")
    pack.commit(
        labels=["a", "b"],
        max_tokens=32,
        inputs=["input_ids", "attention_mask"],
        variants=[Variant(precision="fp32", file="model.fp32.onnx", batch_independent=True)],
        opset=17,
        source_checkpoint="test",
        method="test",
        data_sha256=None,
        metrics={"k": 1},
    )


def test_commit_hashes_every_file_and_moves_into_place(tmp_path: Path) -> None:
    with PackWriter(tmp_path, "p") as pack:
        _commit(pack)
    manifest = verify_pack(tmp_path / "p")
    assert manifest.files == {
        "tokenizer.json": sha256_file(tmp_path / "p" / "tokenizer.json"),
        "model.fp32.onnx": sha256_file(tmp_path / "p" / "model.fp32.onnx"),
    }
    assert [p.name for p in tmp_path.iterdir()] == ["p"]


def test_failed_build_leaves_no_half_pack_and_keeps_the_old_one(tmp_path: Path) -> None:
    with PackWriter(tmp_path, "p") as pack:
        _commit(pack)
    before = verify_pack(tmp_path / "p").version
    with pytest.raises(RuntimeError), PackWriter(tmp_path, "p") as pack:
        (pack.dir / "model.fp32.onnx").write_bytes(b"half")
        raise RuntimeError("export crashed")
    assert [p.name for p in tmp_path.iterdir()] == ["p"]
    assert verify_pack(tmp_path / "p").version == before


def test_ending_without_commit_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(BuildError, match="without committing"), PackWriter(tmp_path, "p"):
        pass
    assert list(tmp_path.iterdir()) == []


def test_names_and_writability(tmp_path: Path) -> None:
    check_name("ehr-specialty")
    for bad in ("", "Upper", "../x", "-x", "a b"):
        with pytest.raises(BuildError):
            check_name(bad)
    blocker = tmp_path / "file"
    blocker.write_text("x", encoding="utf-8")
    with pytest.raises(OutputNotWritable):
        check_writable(blocker / "packs")
