from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nightclerk.cli.main import app
from nightclerk.exporters.datasets import SHARED_DATA_ENV
from nightclerk.shared.manifest import MANIFEST_FILE

runner = CliRunner()


@pytest.fixture(scope="module")
def summarize_packs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from nightclerk.exporters.generation.tiny_pack import build_tiny_summarizer

    out = tmp_path_factory.mktemp("packs")
    build_tiny_summarizer(out, "summarizer")
    return out


@pytest.mark.parametrize(
    "command", ["build-extractive", "build-summarizer", "summary-examples --out x.jsonl"]
)
def test_summarize_builds_without_mtsamples_say_where_to_point(
    command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SHARED_DATA_ENV, str(tmp_path / "nowhere"))
    result = runner.invoke(app, ["models", *command.split()])
    assert result.exit_code == 1
    assert "DataNotFound" in result.output and "NIGHTCLERK_SHARED_DATA" in result.output


def test_show_a_summarize_pack_gives_rouge_beside_lead1_and_counts_past_inputs(
    summarize_packs: Path, tmp_path: Path
) -> None:
    packs = tmp_path / "packs"
    shutil.copytree(summarize_packs, packs)
    manifest_path = packs / "summarizer" / MANIFEST_FILE
    manifest = json.loads(manifest_path.read_text())
    manifest["metrics"] |= {
        "ehr_note_rougeL": 0.4676,
        "lead1_ehr_note_rougeL": 0.3164,
        "eval_documents_ehr_note": 391,
    }
    manifest_path.write_text(json.dumps(manifest))  # the manifest is not among the hashed files
    result = runner.invoke(
        app, ["models", "show", "summarizer", "--packs", str(packs)], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 0, result.output
    assert "summarize; ehr_note ROUGE-L 0.468 (lead-1 0.316)" in result.output
    assert "past key/value tensors" in result.output
