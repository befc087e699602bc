"""The one settings object: environment variables ``NIGHTCLERK_*`` and an optional ``.env`` file."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DocumentKind = Literal["ehr_note", "repair_ticket", "literature"]
Device = Literal["auto", "cpu", "cuda"]
Precision = Literal["auto", "fp32", "fp16", "int8"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="NIGHTCLERK_", env_file=".env", extra="ignore")

    # Broker and queues
    redis_url: str = "redis://127.0.0.1:6379/0"
    queue: str = "nightclerk"

    # Change feed: a Redis Stream (on redis_url) announcing every stored result
    feed_stream: str = Field(default="nightclerk:results", min_length=1, description="Redis Stream key")
    feed_max_entries: int = Field(
        default=1_000_000, ge=1_000, description="the stream is trimmed to about this many entries"
    )

    # Webhook intake (nightclerk serve)
    webhook_token: SecretStr | None = Field(default=None, description="bearer token the webhook requires")
    webhook_max_bytes: int = Field(default=10_000_000, ge=1_000, description="largest request body accepted")

    # Ticket write-back (nightclerk writeback): follows the change feed, POSTs each ticket's result
    writeback_url_template: str | None = Field(
        default=None, description="e.g. https://tickets.example/api/issues/{source_id}/classification"
    )
    writeback_auth_header: SecretStr | None = Field(default=None, description="'Name: value'")
    writeback_kinds: list[str] = Field(default_factory=lambda: ["repair_ticket"])
    writeback_group: str = Field(default="ticket-writeback", min_length=1, description="feed consumer group")
    writeback_timeout_s: float = Field(default=10.0, gt=0)
    writeback_backoff_max_s: float = Field(default=300.0, gt=0, description="longest wait between retries")

    # Result store: SQLite file under data_dir unless a database URL is given.
    data_dir: Path = Path("var")
    database_url: str | None = None
    database_schema: str | None = Field(default=None, description="PostgreSQL schema for the results table")

    # Producers
    chunk_docs: int = Field(default=64, ge=1, le=10_000)
    chunk_max_bytes: int = Field(default=1_000_000, ge=10_000, description="upper bound of one queue message")
    max_text_bytes: int = Field(default=500_000, ge=1, description="documents larger than this are rejected")

    # Workers
    packs_dir: Path = Path("packs")
    classify_packs: dict[str, str] = Field(
        default_factory=lambda: {
            "ehr_note": "ehr-specialty",
            "repair_ticket": "ticket-system",
            "literature": "lit-pubtype",
        },
        description="pack used by the classify task, per document kind",
    )
    summarize_packs: dict[str, str] = Field(
        default_factory=lambda: {
            "ehr_note": "summarizer",
            "repair_ticket": "summarizer",
            "literature": "summarizer",
        },
        description="pack used by the summarize task, per document kind",
    )
    max_summary_batch_docs: int = Field(default=32, ge=1, description="documents per generation batch")
    device: Device = "auto"
    precision: Precision = "auto"
    intra_op_threads: int = Field(default=0, ge=0, description="0: one per CPU core available to the process")
    batch_token_budget: int = Field(default=8192, ge=16, description="padded tokens per inference batch")
    max_batch_docs: int = Field(default=64, ge=1)
    top_k_labels: int = Field(default=5, ge=1)
    metrics_port: int = Field(
        default=0, ge=0, le=65535, description="Prometheus /metrics port; 0: not served"
    )
    task_time_limit_s: int = Field(default=900, ge=10)
    visibility_timeout_s: int = Field(default=3600, ge=60)

    # Logging
    log_json: bool = True
    log_level: str = "INFO"

    @field_validator("visibility_timeout_s")
    @classmethod
    def _visibility_above_time_limit(cls, value: int, info: object) -> int:
        data = getattr(info, "data", {})
        limit = data.get("task_time_limit_s", 0)
        if value <= limit:
            raise ValueError(
                f"visibility_timeout_s ({value}) must exceed task_time_limit_s ({limit}), "
                "or Redis redelivers chunks that are still running"
            )
        return value

    def with_overrides(self, **changes: object) -> Settings:
        """A validated copy with ``changes`` applied (command-line options over ``NIGHTCLERK_*`` values)."""
        return Settings.model_validate({**self.model_dump(), **changes})

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'results.db').resolve()}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
