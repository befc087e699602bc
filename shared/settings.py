"""The one settings object: environment variables ``NIGHTCLERK_*`` and an optional ``.env`` file."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DocumentKind = Literal["ehr_note", "repair_ticket", "literature"]
Device = Literal["auto", "cpu", "cuda"]
Precision = Literal["auto", "fp32", "fp16", "int8"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="NIGHTCLERK_", env_file=".env", extra="ignore")

    # Broker and queues
    redis_url: str = Field(
        default="redis://127.0.0.1:6379/0",
        description="redis://[:password@]host:port/db, rediss://… (TLS: ?ssl_cert_reqs=required&"
        "ssl_ca_certs=…), or sentinel://host:26379;sentinel://host2:26379/db with redis_sentinel_master",
    )
    redis_sentinel_master: str | None = Field(
        default=None, description="the master's name, when redis_url names Redis Sentinels"
    )
    queue: str = "nightclerk"
    message_signing_key: SecretStr | None = Field(
        default=None,
        description="HMAC-SHA256 key: producers sign each chunk, workers refuse chunks not signed with it",
    )
    publish_retry_s: float = Field(
        default=60.0, ge=0, description="how long a producer keeps retrying a send while Redis is away"
    )

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
    chunk_docs: int = Field(default=64, ge=1, le=10_000, description="documents per chunk")
    chunk_max_docs: int = Field(
        default=1024,
        ge=1,
        le=10_000,
        description="classify-only chunks of short documents hold up to this many: a document counts as its "
        "words / 128 of a full one, and a chunk holds chunk_docs full ones (producers/chunking.py)",
    )
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

    # Delivery and recovery (README: Guarantees)
    visibility_timeout_s: int = Field(
        default=900, ge=5, description="a chunk unacknowledged this long is handed to another worker"
    )
    restore_interval_s: float = Field(
        default=10.0, gt=0, description="how often each worker looks for chunks whose worker went away"
    )
    lease_ttl_s: int = Field(
        default=60, ge=3, description="a running chunk's lease, renewed while its worker lives"
    )
    outage_wait_s: float = Field(
        default=300.0, ge=0, description="how long a worker waits, chunk in hand, for the store or Redis"
    )
    retry_backoff_max_s: int = Field(
        default=300, ge=1, description="longest delay before a chunk handed back is tried again"
    )
    document_attempts: int = Field(
        default=3, ge=1, description="tries of a document that fails inference before it is dead-lettered"
    )

    # Logging
    log_json: bool = True
    log_level: str = "INFO"

    @model_validator(mode="after")
    def _delays_within_visibility(self) -> Settings:
        # A chunk handed back with a delay waits, unacknowledged, in a worker until it is due: a delay past
        # the visibility timeout would have Redis hand out a second copy meanwhile.
        longest = max(self.retry_backoff_max_s, self.lease_ttl_s)
        if self.visibility_timeout_s <= longest:
            raise ValueError(
                f"visibility_timeout_s ({self.visibility_timeout_s}) must exceed retry_backoff_max_s and "
                f"lease_ttl_s ({longest}): a delayed chunk would be handed out twice"
            )
        return self

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
