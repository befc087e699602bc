"""Ticketing exports: Jira (REST search JSON, CSV export) and ServiceNow (Table API JSON, CSV) via presets."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from nightclerk.producers.mapping import field_value, load_preset
from nightclerk.producers.push import push_files
from nightclerk.shared.messages import ChunkMessage
from nightclerk.shared.settings import Settings

FIXTURES = Path(__file__).parent / "fixtures" / "ticketing"
HOSE = "Hydraulic hose leaking on excavator 7"
HOSE_DETAIL = "Operator reports oil under the boom cylinder"


def test_field_values_follow_dotted_paths_and_prefer_a_literal_key() -> None:
    record = {"fields": {"priority": {"name": "High"}}, "a.b": 1, "a": {"b": 2}}
    assert field_value(record, "fields.priority.name") == "High"
    assert field_value(record, "a.b") == 1  # a key holding the dots wins
    assert (
        field_value(record, "fields.nope.name") is None
        and field_value(record, "fields.priority.name.x") is None
    )


def push(settings: Settings, tmp_path: Path, name: str, preset: str) -> list[dict[str, str]]:
    rejects = tmp_path / f"{name}.rejects.jsonl"
    summary = push_files([FIXTURES / name], load_preset(preset), ["classify"], settings, rejects_path=rejects,
                         progress=False)  # fmt: skip
    lines = rejects.read_text().splitlines() if rejects.exists() else []
    assert summary.rejected == len(lines)
    return [json.loads(line) for line in lines]


def test_jira_search_response(
    producer_settings: Settings, queued: Callable[[], list[ChunkMessage]], tmp_path: Path
) -> None:
    rejects = push(producer_settings, tmp_path, "jira-search.json", "jira")
    documents = [d for chunk in queued() for d in chunk.documents]
    assert [d.id for d in documents] == ["jira:OPS-1", "jira:OPS-2"]
    first, second = documents
    assert first.kind == "repair_ticket" and first.text.startswith(f"{HOSE}\n\n{HOSE_DETAIL}")
    assert second.text == "Bucket tooth missing"  # a null description adds nothing
    assert first.metadata == {
        "fields.issuetype.name": "Incident", "fields.priority.name": "High", "fields.status.name": "Open",
        "fields.created": "2024-05-01T08:12:00.000+0000",
    }  # fmt: skip
    assert [(r["line"], r["document_id"], r["reason"]) for r in rejects] == [
        (3, None, "text (fields.summary): missing"),
        (4, None, "source_id (key): missing"),
    ]
    assert "No summary" not in json.dumps(rejects)


def test_jira_csv_export_gives_the_same_documents(
    producer_settings: Settings, queued: Callable[[], list[ChunkMessage]], tmp_path: Path
) -> None:
    rejects = push(producer_settings, tmp_path, "jira-export.csv", "jira_csv")
    documents = [d for chunk in queued() for d in chunk.documents]
    assert [d.id for d in documents] == ["jira:OPS-1", "jira:OPS-2"] and rejects == []
    assert documents[0].text == f"{HOSE}\n\n{HOSE_DETAIL}\nafter the morning shift."


@pytest.mark.parametrize("name", ["servicenow-incidents.json", "servicenow-incidents.csv"])
def test_servicenow_incidents(
    producer_settings: Settings, queued: Callable[[], list[ChunkMessage]], tmp_path: Path, name: str
) -> None:
    rejects = push(producer_settings, tmp_path, name, "servicenow")
    documents = [d for chunk in queued() for d in chunk.documents]
    assert [d.id for d in documents] == ["servicenow:INC0010001", "servicenow:INC0010002"]
    assert documents[0].text == "Conveyor belt 3 stopped\n\nBelt tripped the overload relay twice."
    assert (
        documents[1].text == "Compressor noise"
        and documents[0].metadata["assignment_group"] == "Plant Maintenance"
    )
    expected = [(3, "item is not a JSON object")] if name.endswith(".json") else []
    assert [(r["line"], r["reason"]) for r in rejects] == expected
