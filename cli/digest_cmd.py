"""``nightclerk digest``: the overnight literature digest as a self-contained HTML page and Markdown."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import typer

from nightclerk.cli.since import parse_since
from nightclerk.downstream.digest import from_store, write
from nightclerk.shared.errors import NightclerkError
from nightclerk.shared.settings import get_settings
from nightclerk.shared.store import open_store


def digest(
    since: str = typer.Option("24h", help="24h, 30m, 7d or an ISO time"),
    out: Path = typer.Option(
        Path("digest.html"), "--out", "-o", help="the HTML file; the .md is written beside it"
    ),
) -> None:
    """Papers stored since --since, grouped by label, each with its summary and a PubMed link; two charts."""
    try:
        moment = parse_since(since)
        if moment is None:
            raise typer.BadParameter("--since is required")
        store = open_store(get_settings())
        try:
            built = from_store(store, moment, datetime.now(UTC))
        finally:
            store.close()
        html_path, markdown_path = write(built, out)
    except NightclerkError as exc:
        typer.echo(f"nightclerk digest: {exc}", err=True)
        raise typer.Exit(code=2) from None
    typer.echo(f"{built.papers} papers in {len(built.groups)} groups: wrote {html_path} and {markdown_path}")
