"""`nightclerk push` (placeholder until implemented)."""

from __future__ import annotations

import typer


def push() -> None:
    raise typer.Exit(code=2)
