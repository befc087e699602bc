"""``nightclerk results``: list or export stored results."""

from __future__ import annotations

import sys
from contextlib import nullcontext
from enum import StrEnum
from pathlib import Path
from typing import TextIO

import typer
from rich.console import Console
from rich.table import Table

from nightclerk.cli.since import parse_since
from nightclerk.downstream.parquet_export import export_parquet
from nightclerk.shared.errors import NightclerkError
from nightclerk.shared.results import ResultRow
from nightclerk.shared.settings import get_settings
from nightclerk.shared.store import ResultStore, open_store


class Format(StrEnum):
    table = "table"
    jsonl = "jsonl"
    parquet = "parquet"


def results(
    format: Format = typer.Option(
        Format.table, "--format", "-f", help="table, jsonl or parquet (needs --out)"
    ),
    kind: str = typer.Option(None, help="ehr_note, repair_ticket or literature"),
    task: str = typer.Option(None, help="e.g. classify"),
    since: str = typer.Option(None, help="24h, 30m, 7d or an ISO time"),
    limit: int = typer.Option(None, help="at most this many rows (table default: 20)"),
    out: Path = typer.Option(None, "--out", "-o", help="write to this file instead of stdout"),
) -> None:
    """List results from the store, or export them as JSON lines or Parquet."""
    settings = get_settings()
    if format is Format.parquet and out is None:
        typer.echo("nightclerk results: --format parquet needs --out FILE", err=True)
        raise typer.Exit(code=2)
    try:
        store = open_store(settings)  # an empty store lists nothing rather than failing
        if format is Format.table:
            print_table(store, kind=kind, task=task, since=since, limit=limit or 20)
        elif format is Format.parquet:
            rows = store.rows(kind=kind, task=task, since=parse_since(since), limit=limit)
            typer.echo(f"wrote {export_parquet(rows, out)} results to {out}", err=True)
        else:
            with out.open("w", encoding="utf-8") if out else nullcontext(sys.stdout) as handle:
                written = export_jsonl(store, handle, kind=kind, task=task, since=since, limit=limit)
            if out is not None:
                typer.echo(f"wrote {written} results to {out}", err=True)
    except NightclerkError as exc:
        typer.echo(f"nightclerk results: {exc}", err=True)
        raise typer.Exit(code=2) from None


def export_jsonl(
    store: ResultStore,
    handle: TextIO,
    *,
    kind: str | None,
    task: str | None,
    since: str | None,
    limit: int | None,
) -> int:
    written = 0
    for row in store.rows(kind=kind, task=task, since=parse_since(since), limit=limit):
        handle.write(row.model_dump_json() + "\n")
        written += 1
    return written


def results_table(rows: list[ResultRow], title: str, *, compact: bool = False) -> Table:
    """A table of result rows; ``compact`` leaves out task, pack and precision (for narrow terminals)."""
    table = Table(title=title)
    columns = ["document", "kind", "label", "score", "infer ms"]
    if not compact:
        columns[2:2] = ["task"]
        columns[-1:-1] = ["pack", "precision"]
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        cells = {
            "document": row.document_id,
            "kind": row.kind,
            "task": row.task,
            "label": row.top_label or "",
            "score": f"{row.top_score:.3f}" if row.top_score is not None else "",
            "pack": f"{row.pack_name}@{row.pack_version}",
            "precision": row.precision,
            "infer ms": f"{row.timings.infer_ms:.1f}",
        }
        table.add_row(*(cells[column] for column in columns))
    return table


def print_table(
    store: ResultStore, *, kind: str | None, task: str | None, since: str | None, limit: int
) -> None:
    moment = parse_since(since)
    rows = list(store.rows(kind=kind, task=task, since=moment, limit=limit))
    total = store.count(kind=kind, task=task, since=moment)
    Console().print(results_table(rows, f"{len(rows)} of {total} results"))
