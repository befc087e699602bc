from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq

from nightclerk.downstream.parquet_export import SCHEMA, export_parquet
from nightclerk.shared.results import LabelScore, ResultRow, Timings


def rows(n: int) -> list[ResultRow]:
    return [
        ResultRow(
            document_id=f"t:{i}", kind="literature", task="summarize", pack_name="summarizer",
            pack_version="v2", precision="fp32", summary=f"summary {i}",
            timings=Timings(queue_ms=1.5, infer_ms=float(i)),
            labels=[LabelScore(label="a", score=0.5)] if i % 2 else [], worker_id="w", chunk_id="c",
        )
        for i in range(n)
    ]  # fmt: skip


def test_rows_are_written_in_row_groups_and_read_back_the_same(tmp_path: Path) -> None:
    path = tmp_path / "results.parquet"
    assert export_parquet(iter(rows(25)), path, batch_rows=10) == 25
    parquet = pq.ParquetFile(path)
    assert parquet.metadata.num_row_groups == 3 and parquet.schema_arrow.equals(SCHEMA)
    table = parquet.read()
    assert table.column("document_id").to_pylist() == [f"t:{i}" for i in range(25)]
    assert (
        table.column("infer_ms").to_pylist()[3] == 3.0
        and table.column("summary").to_pylist()[4] == "summary 4"
    )
    assert table.column("labels").to_pylist()[:2] == [[], [{"label": "a", "score": 0.5}]]
    assert table.column("top_label").to_pylist()[:2] == [None, "a"]


def test_an_empty_export_still_has_the_columns(tmp_path: Path) -> None:
    path = tmp_path / "none.parquet"
    assert export_parquet([], path) == 0
    table = pq.read_table(path)
    assert table.num_rows == 0 and table.schema.equals(SCHEMA)
