"""The results table. One row per (document id, task, pack version): re-processing never adds a row."""

from __future__ import annotations

import sqlalchemy as sa


def results_table(metadata: sa.MetaData) -> sa.Table:
    return sa.Table(
        "results",
        metadata,
        sa.Column("document_id", sa.String(512), primary_key=True),  # source (200) + ":" + source id (200)
        sa.Column("task", sa.String(32), primary_key=True),
        sa.Column("pack_version", sa.String(64), primary_key=True),
        sa.Column("pack_name", sa.String(64), nullable=False),  # the manifest caps names at 64
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("precision", sa.String(8), nullable=False),
        sa.Column("top_label", sa.Text),
        sa.Column("top_score", sa.Float),
        sa.Column("labels", sa.JSON, nullable=False),
        sa.Column("summary", sa.Text),
        sa.Column("timings", sa.JSON, nullable=False),
        sa.Column("worker_id", sa.String(255), nullable=False),
        sa.Column("chunk_id", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Index("ix_results_created_at", "created_at"),
        sa.Index("ix_results_kind_task", "kind", "task"),
    )
