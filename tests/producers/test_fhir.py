from __future__ import annotations

import base64
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import structlog
import typer
from typer.testing import CliRunner

from nightclerk.cli import push_cmd
from nightclerk.producers.fhir import RECORD_COLUMNS, html_to_text
from nightclerk.producers.mapping import load_preset
from nightclerk.producers.push import push_files
from nightclerk.producers.readers import (
    FileShape,
    Item,
    RecordError,
    RecordReader,
    detect_format,
    inspect_file,
)
from nightclerk.shared.errors import InputError
from nightclerk.shared.messages import ChunkMessage
from nightclerk.shared.settings import Settings, get_settings

SECRET = "PHI-SECRET-7f3a"  # in every fixture text: never in a reason
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "fhir"
Queue = Callable[[], list[ChunkMessage]]


def _items(path: Path) -> list[Item]:
    with RecordReader(path, "fhir") as reader:
        items = list(reader)
    reasons = " ".join(item.reason for _, item in items if isinstance(item, RecordError))
    assert SECRET not in reasons
    return items


def _records(items: list[Item]) -> list[tuple[int, dict[str, Any]]]:
    return [(number, item) for number, item in items if isinstance(item, dict)]


def _reasons(items: list[Item]) -> list[tuple[int, str]]:
    return [(number, item.reason) for number, item in items if isinstance(item, RecordError)]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _write(tmp_path: Path, name: str, *resources: dict[str, Any]) -> Path:
    path = tmp_path / name
    if name.endswith(".json"):
        path.write_text(json.dumps(resources[0]), encoding="utf-8")
    else:
        path.write_text("".join(json.dumps(resource) + "\n" for resource in resources), encoding="utf-8")
    return path


def _note(rid: str, *attachments: dict[str, Any]) -> dict[str, Any]:
    content = [{"attachment": attachment} for attachment in attachments]
    return {"resourceType": "DocumentReference", "id": rid, "status": "current", "content": content}


def test_fhir_is_chosen_explicitly_and_ndjson_stays_jsonl() -> None:
    assert detect_format(Path("export.ndjson")) == "jsonl"
    assert detect_format(Path("export.ndjson"), "fhir") == "fhir"
    assert detect_format(Path("bundle.json"), "fhir") == "fhir"
    assert detect_format(Path("bundle.json")) == "json"  # a plain JSON document: FHIR is always explicit
    with pytest.raises(InputError, match="--format csv, jsonl, json, fhir"):
        detect_format(Path("bundle.txt"))


def test_document_reference_gives_a_record_per_text_attachment() -> None:
    items = _items(FIXTURES / "document-reference.json")
    metadata = {
        "resource_type": "DocumentReference",
        "patient": "Patient/p1",
        "encounter": "Encounter/e1",
        "date": "2024-03-05T10:15:00+01:00",
        "title": "Progress note",
    }
    assert _records(items) == [
        (
            1,
            {
                "id": "DocumentReference/note-1#content0",
                "text": f"Seen in clinic today. {SECRET}\nPlan: rest and fluids.",
                "content_type": "text/plain",
                **metadata,
            },
        ),
        (
            1,
            {
                "id": "DocumentReference/note-1#content1",
                # ISO-8859-1 decoded; head, title and style dropped; block elements are lines
                "text": f"Assessment\nFever & cough, caf\u00e9 {SECRET}\nRest\nFluids",
                "content_type": "text/html",
                **metadata,
            },
        ),
    ]
    assert _reasons(items) == [
        (
            1,
            "DocumentReference/note-1 content[2]: content type application/pdf is not supported; "
            "supported: text/plain, text/html",
        )
    ]


def test_diagnostic_report_gives_presented_form_and_conclusion() -> None:
    records = _records(_items(FIXTURES / "diagnostic-report.json"))
    assert [(record["id"], record["text"]) for _, record in records] == [
        ("DiagnosticReport/rep-7#presentedForm0", f"Findings: clear lungs. {SECRET}"),
        ("DiagnosticReport/rep-7#conclusion", f"No acute disease. {SECRET}"),
    ]
    for _, record in records:
        assert record["date"] == "2024-03-06"  # effectiveDateTime before issued
        assert record["title"] == "Chest X-ray"
        assert record["encounter"] == "Encounter/e2"
        assert record["content_type"] == "text/plain"


def test_composition_is_one_record_of_section_titles_and_narratives() -> None:
    assert _items(FIXTURES / "composition.json") == [
        (
            1,
            {
                "id": "Composition/disc-3",
                "text": (
                    f"History\nTemp > 38 \u00b0C & cough\nNo rash. {SECRET}\n"
                    "Hospital course\nImproved\non \u00e9tude\nDay 1\nIV fluids\nRest"
                ),
                "resource_type": "Composition",
                "content_type": "text/plain",
                "patient": "Patient/p1",
                "encounter": "Encounter/e3",
                "date": "2024-03-08",
                "title": "Discharge summary",
            },
        )
    ]


def test_document_bundle_skips_other_resources_and_numbers_by_entry() -> None:
    items = _items(FIXTURES / "document-bundle.json")
    records = _records(items)
    assert [(number, record["id"]) for number, record in records] == [
        (1, "Composition/disc-3"),
        (5, "DocumentReference/sha256-4cf4070fa9fb86e80292d049"),  # no id: a hash of its text
    ]
    assert _reasons(items) == [
        (4, "DocumentReference/note-url content[0]: has only a url; the text must be inline, as base64 data")
    ]


def test_searchset_bundle_rejects_bad_base64_and_invalid_resources_alone() -> None:
    items = _items(FIXTURES / "searchset-bundle.json")
    assert [(number, record["id"]) for number, record in _records(items)] == [
        (2, "DiagnosticReport/rep-8"),  # a conclusion alone: no suffix
        (3, "DocumentReference/note-b64#content1"),
    ]
    assert _reasons(items) == [
        (3, "DocumentReference/note-b64 content[0]: data is not valid base64"),
        (
            4,
            "DocumentReference/note-bad: not a valid FHIR R4 DocumentReference: "
            "date (value_error); comment (extra_forbidden)",
        ),
    ]


def test_other_bundle_types_are_refused_as_a_whole() -> None:
    assert _items(FIXTURES / "history-bundle.json") == [
        (
            1,
            RecordError(
                "Bundle/b-hist: bundle type history is not read; "
                "types read: collection, transaction, searchset, document"
            ),
        )
    ]


def test_ndjson_export_is_numbered_by_line() -> None:
    items = _items(FIXTURES / "export.ndjson")
    assert [(number, record["id"]) for number, record in _records(items)] == [
        (1, "DocumentReference/n-1"),
        (6, "DocumentReference/n-5"),
    ]
    assert _records(items)[1][1]["text"] == f"caf\u00e9 {SECRET}"
    assert _reasons(items) == [
        (2, "invalid JSON: Unterminated string starting at: column 81"),
        (4, "DiagnosticReport/r-3: not a valid FHIR R4 DiagnosticReport: effectiveDateTime (value_error)"),
        (5, "DiagnosticReport/r-4 presentedForm[0]: data is not valid utf-8 text (byte 3)"),
    ]


def test_rereading_gives_the_same_ids() -> None:
    for path in sorted(FIXTURES.iterdir()):
        first = [record["id"] for _, record in _records(_items(path))]
        assert first == [record["id"] for _, record in _records(_items(path))]


def test_more_attachment_problems(tmp_path: Path) -> None:
    text = SECRET.encode()
    path = _write(
        tmp_path,
        "more.ndjson",
        _note("a", {"contentType": "text/plain; charset=x-nonesuch", "data": _b64(text)}),
        _note("b", {"data": _b64(text)}),
        _note("c", {"contentType": "text/plain", "data": _b64(b"  \n ")}),
        _note("d", {"contentType": "text/html", "data": _b64(b"<p>caf\xc3\xa9 &amp; " + text + b"</p>")}),
        {"resourceType": "Patient", "id": "p1"},
        {"resourceType": "DocumentReference", "id": "e", "status": "current", "content": []},
        {"id": "nothing"},
        [SECRET],
    )
    items = _items(path)
    assert _records(items) == [
        (
            4,
            {
                "id": "DocumentReference/d",
                "text": f"caf\u00e9 & {SECRET}",
                "resource_type": "DocumentReference",
                "content_type": "text/html",
            },
        )
    ]
    assert _reasons(items) == [
        (1, "DocumentReference/a content[0]: unknown charset x-nonesuch"),
        (2, "DocumentReference/b content[0]: no content type"),
        (3, "DocumentReference/c content[0]: holds no text"),
        (
            5,
            "Patient/p1: resource type Patient is not read; "
            "types read: DocumentReference, DiagnosticReport, Composition, Bundle",
        ),
        (6, "DocumentReference/e: no attachment or conclusion"),
        (7, "not a FHIR resource: resourceType missing"),
        (8, "not a JSON object"),
    ]


def test_what_fuzzing_found_is_rejected_not_a_crash(tmp_path: Path) -> None:
    """Found by the fuzz tests: codecs that are not text encodings, a charset with a NUL, a number as an
    attachment url (fhir.resources raises AttributeError), an integer too long for Python's int()."""
    text = _b64(SECRET.encode())
    path = _write(
        tmp_path,
        "found.ndjson",
        _note("a", {"contentType": "text/plain; charset=rot13", "data": text}),
        _note("b", {"contentType": "text/html; charset=base64", "data": text}),
        _note("c", {"contentType": "text/plain; charset=undefined", "data": text}),
        _note("d", {"contentType": "text/plain; charset=utf\u0000", "data": text}),
        _note("e", {"contentType": "text/plain", "data": text, "url": 5}),
    )
    with path.open("ab") as handle:
        handle.write(b'{"resourceType": "DocumentReference", "id": "f", "n": ' + b"9" * 4_400 + b"}\n")
    assert _reasons(_items(path)) == [
        (1, "DocumentReference/a content[0]: charset rot13 is not a text encoding"),
        (2, "DocumentReference/b content[0]: charset base64 is not a text encoding"),
        (3, "DocumentReference/c content[0]: data is not valid undefined text"),
        (4, "DocumentReference/d content[0]: unknown charset (not shown)"),
        (5, "DocumentReference/e: not a valid FHIR R4 DocumentReference: validation failed (AttributeError)"),
        (6, "invalid JSON: a number too long to read"),
    ]


def test_invalid_json_file_names_the_place_only(tmp_path: Path) -> None:
    path = tmp_path / "cut.json"
    path.write_text('{\n  "resourceType": "DocumentReference",\n  "note": "' + SECRET, encoding="utf-8")
    reason = "invalid JSON: Unterminated string starting at: line 3 column 11"
    assert _items(path) == [(1, RecordError(reason))]


def test_inspect_file_gives_the_fixed_columns(tmp_path: Path) -> None:
    shape = inspect_file(FIXTURES / "export.ndjson", "fhir")
    assert shape == FileShape(columns=list(RECORD_COLUMNS), has_records=True, header=False)
    patient = {"resource": {"resourceType": "Patient"}}
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [patient]}
    only_patients = _write(tmp_path, "patients.json", bundle)
    assert not inspect_file(only_patients, "fhir").has_records
    empty = tmp_path / "empty.ndjson"
    empty.write_bytes(b"\n\n")
    assert not inspect_file(empty, "fhir").has_records


def test_html_to_text() -> None:
    markup = (
        '<div xmlns="http://www.w3.org/1999/xhtml"><h2>Plan</h2><p>a&nbsp;b &lt;c&gt;\n  d<br/>e</p>'
        "<!-- hidden --><table><tr><td>1</td><td>2</td></tr></table><script>x()</script>tail</div>"
    )
    assert html_to_text(markup) == "Plan\na b <c> d\ne\n1 2\ntail"
    assert html_to_text("") == ""


def test_push_round_trip_to_the_queue(producer_settings: Settings, queued: Queue, tmp_path: Path) -> None:
    paths = [FIXTURES / "export.ndjson", FIXTURES / "searchset-bundle.json"]
    rejects_path = tmp_path / "rejects.jsonl"
    summary = push_files(
        paths,
        load_preset("fhir"),
        ["classify"],
        producer_settings,
        rejects_path=rejects_path,
        progress=False,
        fmt="fhir",
    )
    assert (summary.accepted, summary.rejected) == (4, 5)
    documents = [doc for chunk in queued() for doc in chunk.documents]
    assert [doc.id for doc in documents] == [
        "fhir:DocumentReference/n-1",
        "fhir:DocumentReference/n-5",
        "fhir:DiagnosticReport/rep-8",
        "fhir:DocumentReference/note-b64#content1",
    ]
    first = documents[0]
    assert first.kind == "ehr_note"
    assert first.text == f"Seen in clinic today. {SECRET}\nPlan: rest and fluids."
    assert first.metadata == {
        "patient": "Patient/p1",
        "encounter": "Encounter/e1",
        "date": "2024-03-05T10:15:00+01:00",
        "resource_type": "DocumentReference",
        "content_type": "text/plain",
        "title": "Progress note",
    }
    text = rejects_path.read_text(encoding="ascii")
    assert SECRET not in text
    rejects = [json.loads(line) for line in text.splitlines()]
    assert [(Path(r["file"]).name, r["line"], r["reason"].split(":")[0]) for r in rejects] == [
        ("export.ndjson", 2, "invalid JSON"),
        ("export.ndjson", 4, "DiagnosticReport/r-3"),
        ("export.ndjson", 5, "DiagnosticReport/r-4 presentedForm[0]"),
        ("searchset-bundle.json", 3, "DocumentReference/note-b64 content[0]"),
        ("searchset-bundle.json", 4, "DocumentReference/note-bad"),
    ]


def test_the_push_command_reads_a_bulk_export(
    producer_settings: Settings, queued: Queue, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NIGHTCLERK_REDIS_URL", producer_settings.redis_url)
    monkeypatch.setenv("NIGHTCLERK_QUEUE", producer_settings.queue)
    monkeypatch.chdir(tmp_path)
    app = typer.Typer()
    app.callback()(lambda: None)
    app.command("push")(push_cmd.push)
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    get_settings.cache_clear()
    try:
        args = ["push", str(FIXTURES / "export.ndjson"), "--format", "fhir", "--mapping", "fhir"]
        result = CliRunner().invoke(app, [*args, "--no-progress"])
    finally:
        root.handlers[:], root.level = handlers, level
        structlog.reset_defaults()
        get_settings.cache_clear()
    assert SECRET not in result.stdout and SECRET not in result.stderr
    assert result.exit_code == 3  # some rejected
    assert result.stdout.startswith("accepted 2, rejected 3 (see rejects-")
    assert [doc.id for chunk in queued() for doc in chunk.documents] == [
        "fhir:DocumentReference/n-1",
        "fhir:DocumentReference/n-5",
    ]
