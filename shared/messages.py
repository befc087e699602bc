"""The queue message: one chunk of documents of one kind, JSON only.

Producers send it with ``app.send_task(PROCESS_CHUNK_TASK, args=[message.model_dump(mode="json")])``;
they never import the workers, so the task name lives here.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from nightclerk.shared.documents import Document

Task = Literal["classify", "summarize"]
TASKS: tuple[str, ...] = ("classify", "summarize")
PROCESS_CHUNK_TASK = "nightclerk.workers.tasks.process_chunk"
SCHEMA_VERSION: Literal[1] = 1


class ChunkMessage(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    schema_version: Literal[1] = SCHEMA_VERSION
    # a uuid4 in hex: it is the Celery task id and the ledger's and lease's key, and it is logged
    chunk_id: str = Field(default_factory=lambda: uuid.uuid4().hex, pattern=r"^[0-9a-f]{32}$")
    tasks: list[Task] = Field(min_length=1)
    documents: list[Document] = Field(min_length=1)
    pushed_at: datetime = Field(default_factory=lambda: datetime.now(UTC))

    @model_validator(mode="after")
    def _one_kind(self) -> ChunkMessage:
        kinds = {doc.kind for doc in self.documents}
        if len(kinds) != 1:
            raise ValueError(f"a chunk holds documents of one kind, got {sorted(kinds)}")
        return self

    @property
    def kind(self) -> str:
        return self.documents[0].kind
