"""`nightclerk data`: put the real labelled data where the exporters look for it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from nightclerk.exporters.datasets import SHARED_DATA_ENV, fetch_nestor, mtsamples_path
from nightclerk.exporters.pubmed import fetch_pubmed
from nightclerk.shared.errors import NightclerkError
from nightclerk.shared.settings import get_settings

app = typer.Typer(no_args_is_help=True, help="Fetch the labelled data the demo packs are built from.")
out = Console()


@app.callback()
def _group() -> None:
    """Data for model building."""


@app.command()
def fetch(
    wheels: Annotated[Path | None, typer.Option("--wheels", help="folder with downloaded wheels")] = None,
    dest: Annotated[Path | None, typer.Option("--out", help="data folder [default: <data_dir>/data]")] = None,
) -> None:
    """Extract the nestor work orders and PubMed abstracts from their wheels; say where MTSamples is."""
    data_dir = get_settings().data_dir
    wheels = wheels if wheels is not None else data_dir / "wheels"
    dest = dest if dest is not None else data_dir / "data"
    try:
        path = fetch_nestor(wheels, dest / "nestor")
        pubmed = dest / "pubmed" / "pubtype.csv"
        if not pubmed.is_file():  # 5 s of XML parsing: only once
            pubmed = fetch_pubmed(wheels, dest / "pubmed")
    except NightclerkError as exc:
        Console(stderr=True).print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(code=1) from None
    out.print(f"nestor: {path}", highlight=False)
    out.print(f"pubmed: {pubmed}", highlight=False)
    notes = mtsamples_path()
    if notes is None:
        out.print(
            f"mtsamples: not found (looked for shared/data/mtsamples/notes.csv above this folder; "
            f"set {SHARED_DATA_ENV}); ehr-specialty will be skipped",
            highlight=False,
        )
    else:
        out.print(f"mtsamples: {notes}", highlight=False)
