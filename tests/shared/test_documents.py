from __future__ import annotations

import pytest
from pydantic import ValidationError

from nightclerk.shared.documents import DOCUMENT_ADAPTER, EhrNote, RepairTicket, content_id


def test_id_is_source_and_source_id() -> None:
    note = EhrNote(source="mtsamples", source_id="mts-0002", text="Chest pain.")
    assert note.id == "mtsamples:mts-0002"
    assert note.kind == "ehr_note"


def test_id_without_source_id_is_a_content_hash_stable_across_pushes() -> None:
    first = RepairTicket(source="nestor", text="BUCKET WON'T OPEN")
    again = RepairTicket(source="nestor", text="BUCKET WON'T OPEN")
    other = RepairTicket(source="nestor", text="BUCKET LEAKING")
    assert first.id == again.id == f"nestor:{content_id(first.text)}"
    assert first.id != other.id


def test_given_id_is_replaced_by_the_derived_one() -> None:
    note = EhrNote(source="s", source_id="1", text="x", id="forged")
    assert note.id == "s:1"


def test_union_dispatches_on_kind() -> None:
    doc = DOCUMENT_ADAPTER.validate_python(
        {"kind": "literature", "source": "pubmed", "source_id": "1", "text": "a"}
    )
    assert doc.kind == "literature"
    with pytest.raises(ValidationError):
        DOCUMENT_ADAPTER.validate_python({"kind": "fax", "source": "s", "text": "a"})


@pytest.mark.parametrize("text", ["", "   \n\t"])
def test_empty_text_is_refused(text: str) -> None:
    with pytest.raises(ValidationError):
        EhrNote(source="s", text=text)


def test_undecodable_bytes_are_refused_and_the_error_does_not_echo_the_text() -> None:
    secret = "Patient Jane Roe has \udc80 diabetes"
    with pytest.raises(ValidationError) as info:
        EhrNote(source="s", source_id="1", text=secret)
    assert "Jane Roe" not in str(info.value)


@pytest.mark.parametrize("bad", ["has space", "-leading", "x" * 201])
def test_malformed_source_ids_are_refused(bad: str) -> None:
    with pytest.raises(ValidationError):
        EhrNote(source="s", source_id=bad, text="t")


def test_blank_source_id_means_none_and_blank_source_is_refused() -> None:
    assert EhrNote(source="s", source_id="  ", text="t").source_id is None
    with pytest.raises(ValidationError):
        EhrNote(source="", text="t")
