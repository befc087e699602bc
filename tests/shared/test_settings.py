from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from nightclerk.shared.settings import Settings


def test_reads_nightclerk_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NIGHTCLERK_REDIS_URL", "redis://example:6380/2")
    monkeypatch.setenv("NIGHTCLERK_CHUNK_DOCS", "17")
    monkeypatch.setenv("NIGHTCLERK_CLASSIFY_PACKS", '{"ehr_note": "mine"}')
    settings = Settings()
    assert settings.redis_url == "redis://example:6380/2"
    assert settings.chunk_docs == 17
    assert settings.classify_packs == {"ehr_note": "mine"}


def test_default_store_is_a_sqlite_file_under_data_dir(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    assert settings.resolved_database_url == f"sqlite:///{tmp_path.resolve()}/results.db"
    assert Settings(database_url="postgresql://h/db").resolved_database_url == "postgresql://h/db"


def test_visibility_timeout_must_exceed_every_delay_a_worker_holds_a_chunk_for() -> None:
    with pytest.raises(ValidationError, match="visibility_timeout_s"):
        Settings(retry_backoff_max_s=600, visibility_timeout_s=600)
    with pytest.raises(ValidationError, match="lease_ttl_s"):
        Settings(lease_ttl_s=120, retry_backoff_max_s=10, visibility_timeout_s=100)
    assert Settings(lease_ttl_s=5, retry_backoff_max_s=5, visibility_timeout_s=10).visibility_timeout_s == 10
