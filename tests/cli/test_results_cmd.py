from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nightclerk.cli.main import app
from nightclerk.shared.results import LabelScore, ResultRow
from nightclerk.shared.settings import get_settings
from nightclerk.shared.store import ResultStore


@pytest.fixture
def filled_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("NIGHTCLERK_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("NIGHTCLERK_DATABASE_URL", raising=False)
    get_settings.cache_clear()
    store = ResultStore(f"sqlite:///{tmp_path / 'results.db'}")
    store.create_schema()
    now = datetime.now(UTC)
    rows = [
        ResultRow(
            document_id=f"{kind}:{i}",
            kind=kind,
            task="classify",
            pack_name="p",
            pack_version="v1",
            precision="int8",
            labels=[LabelScore(label="Surgery", score=0.9)],
            worker_id="w",
            chunk_id="c",
            created_at=now - timedelta(days=i),
        )
        for kind in ("ehr_note", "repair_ticket")
        for i in range(3)
    ]
    store.upsert(rows)
    store.close()
    yield tmp_path
    get_settings.cache_clear()


def test_jsonl_export_with_filters(filled_store: Path) -> None:
    out = filled_store / "out.jsonl"
    result = CliRunner().invoke(
        app, ["results", "--format", "jsonl", "--kind", "ehr_note", "--since", "36h", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(r["document_id"] for r in rows) == ["ehr_note:0", "ehr_note:1"]
    assert rows[0]["labels"] == [{"label": "Surgery", "score": 0.9}]


def test_table_lists_rows_and_the_total(filled_store: Path) -> None:
    result = CliRunner().invoke(app, ["results", "--limit", "2"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "2 of 6 results" in result.output
    assert "Surgery" in result.output


def test_a_bad_since_is_a_usage_error(filled_store: Path) -> None:
    result = CliRunner().invoke(app, ["results", "--since", "last tuesday"])
    assert result.exit_code == 2


def test_parquet_export_keeps_every_column_and_filters(filled_store: Path) -> None:
    import pyarrow.parquet as pq

    out = filled_store / "tickets.parquet"
    result = CliRunner().invoke(
        app, ["results", "--format", "parquet", "--kind", "repair_ticket", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    table = pq.read_table(out)
    assert table.num_rows == 3 and set(table.column("kind").to_pylist()) == {"repair_ticket"}
    first = table.slice(0, 1).to_pylist()[0]
    assert first["labels"] == [{"label": "Surgery", "score": 0.9}] and first["top_label"] == "Surgery"
    assert str(table.schema.field("created_at").type) == "timestamp[us, tz=UTC]"
    assert not (filled_store / "tickets.parquet.partial").exists()


def test_parquet_needs_a_file(filled_store: Path) -> None:
    result = CliRunner().invoke(app, ["results", "--format", "parquet"])
    assert result.exit_code == 2 and "needs --out" in result.output
