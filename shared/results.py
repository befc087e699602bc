"""The result row: what the store keeps per (document id, task, pack version)."""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict, Field


class LabelScore(BaseModel):
    model_config = ConfigDict(frozen=True)

    label: str
    score: float


class Timings(BaseModel):
    """Milliseconds spent on the batch the document ran in, shared out per document; queue wait per chunk."""

    queue_ms: float = 0.0
    tokenize_ms: float = 0.0
    infer_ms: float = 0.0


class ResultRow(BaseModel):
    model_config = ConfigDict(extra="forbid")

    document_id: str
    kind: str
    task: str
    pack_name: str
    pack_version: str
    precision: str
    labels: list[LabelScore] = Field(default_factory=list)
    summary: str | None = None
    timings: Timings = Field(default_factory=Timings)
    worker_id: str
    chunk_id: str
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))

    @property
    def top_label(self) -> str | None:
        return self.labels[0].label if self.labels else None

    @property
    def top_score(self) -> float | None:
        return self.labels[0].score if self.labels else None
