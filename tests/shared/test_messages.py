from __future__ import annotations

import pytest
from pydantic import ValidationError

from nightclerk.shared.documents import EhrNote, RepairTicket
from nightclerk.shared.messages import ChunkMessage


def test_round_trips_through_json() -> None:
    chunk = ChunkMessage(
        tasks=["classify"], documents=[EhrNote(source="s", source_id=str(i), text="t") for i in range(3)]
    )
    again = ChunkMessage.model_validate_json(chunk.model_dump_json())
    assert again == chunk
    assert again.kind == "ehr_note"


def test_a_chunk_holds_one_kind() -> None:
    with pytest.raises(ValidationError, match="one kind"):
        ChunkMessage(
            tasks=["classify"], documents=[EhrNote(source="s", text="a"), RepairTicket(source="s", text="b")]
        )


def test_unknown_task_and_empty_chunk_are_refused() -> None:
    with pytest.raises(ValidationError):
        ChunkMessage.model_validate(
            {"tasks": ["translate"], "documents": [{"kind": "ehr_note", "source": "s", "text": "a"}]}
        )
    with pytest.raises(ValidationError):
        ChunkMessage(tasks=["classify"], documents=[])


def test_a_chunk_id_is_a_uuid_in_hex_never_free_text() -> None:
    note = {"kind": "ehr_note", "source": "s", "text": "a"}
    assert len(ChunkMessage(tasks=["classify"], documents=[EhrNote(source="s", text="a")]).chunk_id) == 32
    with pytest.raises(ValidationError, match="chunk_id"):
        ChunkMessage.model_validate(
            {"chunk_id": "pain in the left knee", "tasks": ["classify"], "documents": [note]}
        )
