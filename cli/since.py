"""Parse ``--since`` values: a duration back from now (``90m``, ``24h``, ``7d``) or an ISO 8601 time."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import typer

_DURATION = re.compile(r"^(\d+)\s*([smhd])$")
_UNIT = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_since(value: str | None, now: datetime | None = None) -> datetime | None:
    if value is None:
        return None
    now = now or datetime.now(UTC)
    match = _DURATION.match(value.strip())
    if match:
        return now - timedelta(**{_UNIT[match.group(2)]: int(match.group(1))})
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is neither a duration like 24h/30m/7d nor an ISO time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
