from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import typer

from nightclerk.cli.since import parse_since

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "back"),
    [
        ("24h", timedelta(hours=24)),
        ("30m", timedelta(minutes=30)),
        ("7d", timedelta(days=7)),
        ("5s", timedelta(seconds=5)),
    ],
)
def test_durations_count_back_from_now(value: str, back: timedelta) -> None:
    assert parse_since(value, now=NOW) == NOW - back


def test_iso_times_and_none() -> None:
    assert parse_since("2026-11-01T08:00:00", now=NOW) == datetime(2026, 11, 1, 8, tzinfo=UTC)
    assert parse_since(None) is None
    with pytest.raises(typer.BadParameter):
        parse_since("yesterday")
