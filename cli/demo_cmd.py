"""`nightclerk demo` (placeholder until implemented)."""

from __future__ import annotations

import typer


def demo() -> None:
    raise typer.Exit(code=2)
