from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from nightclerk.producers.filecheck import check_columns
from nightclerk.producers.mapping import FieldMapping, load_preset
from nightclerk.producers.readers import FileShape, RecordError
from nightclerk.producers.rejects import Reject
from nightclerk.producers.validation import Accepted, Validator
from nightclerk.shared.documents import content_id
from nightclerk.shared.errors import InputError

SECRET = "PHI-SECRET-7f3a"
NOTES = FieldMapping(
    kind="ehr_note", source="clinic", id_field="id", text_field="text", metadata_fields=["ward", "extra"]
)


def _validator(mapping: FieldMapping = NOTES, *, max_text: int = 10_000, max_json: int = 50_000) -> Validator:
    return Validator(mapping, max_text_bytes=max_text, max_json_bytes=max_json)


def _reject(result: Accepted | Reject) -> Reject:
    assert isinstance(result, Reject), result
    assert SECRET not in result.reason
    assert SECRET not in result.to_json()
    return result


def _note(**fields: Any) -> dict[str, Any]:
    return {"id": "n1", "text": f"note {SECRET} text", "ward": "3B", **fields}


def test_a_valid_record_becomes_a_document() -> None:
    result = _validator().validate("f.csv", 2, _note(extra=7))
    assert isinstance(result, Accepted)
    doc = result.document
    assert (doc.id, doc.kind, doc.source_id) == ("clinic:n1", "ehr_note", "n1")
    assert doc.metadata == {"ward": "3B", "extra": "7"}
    assert result.json_bytes > len(doc.text)


def test_without_an_id_field_the_id_is_a_content_hash() -> None:
    mapping = NOTES.model_copy(update={"id_field": None})
    result = _validator(mapping).validate("f.csv", 2, _note())
    assert isinstance(result, Accepted)
    assert result.document.id == f"clinic:{content_id(_note()['text'])}"


def test_read_errors_become_rejects() -> None:
    reject = _reject(_validator().validate("f.jsonl", 9, RecordError("invalid JSON: x at column 3")))
    assert reject == Reject("f.jsonl", 9, None, "invalid JSON: x at column 3")


def test_oversized_text_is_rejected_by_size_with_its_id() -> None:
    reject = _reject(_validator(max_text=100).validate("f.csv", 2, _note(text=SECRET + "x" * 200)))
    assert reject.reason == f"text is {len(SECRET) + 200} bytes, limit 100"
    assert reject.document_id == "clinic:n1"


def test_a_document_too_big_for_a_chunk_is_rejected() -> None:
    reject = _reject(_validator(max_json=500).validate("f.csv", 2, _note(text=SECRET + "\u00e9" * 100)))
    assert reject.reason.startswith("document is ") and reject.reason.endswith("a chunk holds at most 500")


@pytest.mark.parametrize("bad", [f"{SECRET} caf\udce9", f"{SECRET} \ud800 from a JSON escape"])
def test_lone_surrogates_are_not_valid_utf8(bad: str) -> None:
    reject = _reject(_validator().validate("f.csv", 4, _note(text=bad)))
    assert reject.reason == "text: not valid UTF-8"
    assert reject.document_id == "clinic:n1"
    reject = _reject(_validator().validate("f.csv", 4, _note(ward=bad)))
    assert reject.reason == "metadata.ward: not valid UTF-8"


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        ({"id": "n1", "ward": "3B"}, "text (text): missing"),
        ({"id": "n1", "text": ["a", SECRET]}, "text (text): not a string"),
        ({"text": SECRET}, "source_id (id): missing"),
        ({"id": "  ", "text": SECRET}, "source_id (id): missing"),
        ({"id": "n 1", "text": SECRET}, "source_id: source_id must be 1-200 characters"),
        ({"id": "n1", "text": "   "}, "text: text is empty"),
        ({"id": "n1", "text": ""}, "text: String should have at least 1 character"),
    ],
)
def test_invalid_records_get_a_field_and_message(record: dict[str, Any], reason: str) -> None:
    assert _reject(_validator().validate("f.csv", 2, record)).reason.startswith(reason)


def test_unknown_kind_with_a_kind_field() -> None:
    mapping = FieldMapping(kind_field="type", source="mixed", id_field="id", text_field="text")
    validator = _validator(mapping)
    accepted = validator.validate("f.jsonl", 1, {"type": "literature", "id": "p1", "text": SECRET})
    assert isinstance(accepted, Accepted) and accepted.document.kind == "literature"
    reject = _reject(validator.validate("f.jsonl", 2, {"type": "memo", "id": "m1", "text": SECRET}))
    assert reject.reason == "type: unknown kind 'memo'; kinds: ehr_note, repair_ticket, literature"
    # a value that might be text is not repeated in the reason
    reject = _reject(validator.validate("f.jsonl", 3, {"type": f"a {SECRET}", "id": "m2", "text": "x"}))
    assert reject.reason.startswith("type: unknown kind (value not shown)")
    assert _reject(validator.validate("f.jsonl", 4, {"id": "m3", "text": "x"})).reason == "type: missing"


def test_duplicate_ids_within_a_run_point_at_the_first() -> None:
    validator = _validator()
    assert isinstance(validator.validate("a.csv", 2, _note()), Accepted)
    validator.start_file()
    reject = _reject(validator.validate("b.csv", 7, _note(text="other text")))
    assert reject == Reject("b.csv", 7, "clinic:n1", "duplicate id, first seen at a.csv:2")


def test_title_goes_to_literature_or_to_metadata() -> None:
    mapping = FieldMapping(kind_field="kind", source="lib", id_field="id", text_field="text", title_field="t")
    validator = _validator(mapping)
    paper = validator.validate("f", 1, {"kind": "literature", "id": "1", "text": "abstract", "t": "On X"})
    note = validator.validate("f", 2, {"kind": "ehr_note", "id": "2", "text": "note", "t": "Consult"})
    assert isinstance(paper, Accepted) and paper.document.title == "On X"  # type: ignore[union-attr]
    assert isinstance(note, Accepted) and note.document.metadata == {"title": "Consult"}


def test_nestor_ids_are_stable_and_distinct_for_identical_rows() -> None:
    mapping = load_preset("nestor")
    row = {
        "Asset": "A",
        "BscStartDate": "2004-07-01",
        "OriginalShorttext": "BUCKET WON'T OPEN",
        "PMType": "PM01",
        "MajorSystem": "Bucket",
    }

    def ids() -> list[str]:
        validator = _validator(mapping)
        validator.start_file()
        results = [validator.validate("x.csv", line, dict(row)) for line in (2, 3)]
        results.append(validator.validate("x.csv", 4, {**row, "Asset": "B"}))
        return [r.document.id for r in results if isinstance(r, Accepted)]

    first = ids()
    assert first == ["nestor:A-2004-07-01-1", "nestor:A-2004-07-01-2", "nestor:B-2004-07-01-1"]
    assert ids() == first
    validator = _validator(mapping)
    reject = _reject(validator.validate("x.csv", 2, {**row, "Asset": ""}))
    assert reject.reason == "source_id: id_template field Asset is missing"


def test_line_template() -> None:
    mapping = FieldMapping(kind="repair_ticket", source="cmms", id_template="wo-{_line}", text_field="text")
    result = _validator(mapping).validate("f.csv", 42, {"text": "fix it"})
    assert isinstance(result, Accepted) and result.document.id == "cmms:wo-42"


def test_check_columns() -> None:
    path = Path("notes.csv")
    mapping = load_preset("mtsamples")
    good = ["note_id", "specialty", "sample_name", "description", "transcription", "keywords"]
    check_columns(path, FileShape(good, True, True), mapping)
    with pytest.raises(InputError, match=r"notes.csv is empty"):
        check_columns(path, FileShape([], False, True), mapping)
    with pytest.raises(InputError, match=r"has a header but no records"):
        check_columns(path, FileShape(good, False, True), mapping)
    with pytest.raises(
        InputError,
        match=r"missing column\(s\) transcription, sample_name .*the header line has 3 column\(s\), "
        r"named by the mapping: note_id, specialty \(other cells are not shown",
    ):
        check_columns(path, FileShape(["note_id", "specialty", "text"], True, True), mapping)
    with pytest.raises(InputError, match=r"transcription appear more than once"):
        check_columns(path, FileShape([*good, "transcription"], True, True), mapping)
    with pytest.raises(InputError, match=r"keys found in the first 100 records: note_id"):
        check_columns(Path("n.jsonl"), FileShape(["note_id"], True, False), mapping)
    check_columns(Path("n.jsonl"), FileShape([], True, False), mapping)  # nothing parsed: per-line rejects


def test_a_csv_without_a_header_line_is_refused_without_quoting_its_first_record() -> None:
    """Found by the fuzz tests: the first record, read as the header, was listed in the error."""
    mapping = load_preset("mtsamples")
    first_record = ["17", "Cardiology", "Sample Name", f"Seen today. {SECRET}", "Transcription"]
    with pytest.raises(InputError) as refused:
        check_columns(Path("notes.csv"), FileShape(first_record, True, True), mapping)
    message = str(refused.value)
    assert SECRET not in message and "Cardiology" not in message and "17" not in message
    assert message.startswith("notes.csv: missing column(s) transcription, note_id, specialty, sample_name")
    assert "the header line has 5 column(s), named by the mapping: none" in message
    assert "did you mean Transcription for transcription, Sample Name for sample_name?" in message
