"""`nightclerk worker` (placeholder until implemented)."""

from __future__ import annotations

import typer


def worker() -> None:
    raise typer.Exit(code=2)
