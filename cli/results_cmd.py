"""`nightclerk results` (placeholder until implemented)."""

from __future__ import annotations

import typer


def results() -> None:
    raise typer.Exit(code=2)
