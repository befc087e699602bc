"""A result store on each backend: an SQLite file, and a PostgreSQL schema of the test's own."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from nightclerk.shared.store import ResultStore


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ResultStore]:
    if request.param == "sqlite":
        result = ResultStore(f"sqlite:///{tmp_path / 'results.db'}")
    else:
        url = request.getfixturevalue("postgres_url")
        result = ResultStore(url, schema=request.getfixturevalue("pg_schema"))
    result.create_schema()
    yield result
    result.drop()
    result.close()
