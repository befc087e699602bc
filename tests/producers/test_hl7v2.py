from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from nightclerk.producers import hl7v2
from nightclerk.producers.hl7v2 import RECORD_COLUMNS, file_items
from nightclerk.producers.mapping import load_preset
from nightclerk.producers.push import push_files
from nightclerk.producers.readers import Item, RecordError
from nightclerk.producers.rejects import Reject
from nightclerk.producers.validation import Accepted, Validator
from nightclerk.shared.messages import ChunkMessage
from nightclerk.shared.settings import Settings

SECRET = "PHI-SECRET-7f3a"  # in every fixture text: never in a reason
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "hl7"
Queue = Callable[[], list[ChunkMessage]]
SUPPORTED = "supported: MDM^T02, MDM^T04, MDM^T06, MDM^T08, MDM^T10, ORU^R01"
MDM_METADATA = {
    "message_type": "MDM^T02",
    "patient": "MRN123",
    "encounter": "V555",
    "date": "20240305093000",
    "document_type": "Progress Note",
    "sending_facility": "NORTH",
}


def _items(path: Path) -> list[Item]:
    with path.open("rb") as stream:
        items = list(file_items(stream))
    reasons = " ".join(item.reason for _, item in items if isinstance(item, RecordError))
    assert SECRET not in reasons
    return items


def _records(items: list[Item]) -> list[tuple[int, dict[str, Any]]]:
    return [(number, item) for number, item in items if isinstance(item, dict)]


def _reasons(items: list[Item]) -> list[tuple[int, str]]:
    return [(number, item.reason) for number, item in items if isinstance(item, RecordError)]


def _ids(path: Path) -> list[str]:
    return [record["id"] for _, record in _records(_items(path))]


def test_mdm_t02_multi_line_tx_with_escapes_and_repetitions() -> None:
    assert _records(_items(FIXTURES / "mdm-t02.hl7")) == [
        (
            1,
            {
                "id": "doc/DOC-1001",
                "text": (
                    f"Seen in clinic today. {SECRET}\n"
                    "BP 120/80 & HR 72; pipe | caret ^ tilde ~ backslash \\.\n"
                    "Plan:\n1. rest\n2. fluids\n3. follow up in café A"
                ),
                **MDM_METADATA,
            },
        )
    ]


def test_oru_r01_reads_ft_and_st_and_skips_nm() -> None:
    [(number, record)] = _records(_items(FIXTURES / "oru-r01.hl7"))
    assert number == 1
    assert record == {
        "id": "order/F-778",
        "text": f"FINAL DIAGNOSIS\nBenign tissue. {SECRET}\n\nSigned.\nSpecimen adequate",
        "message_type": "ORU^R01",
        "patient": "MRN777",
        "date": "20240401081500",
        "document_type": "Pathology study",
        "sending_facility": "SOUTH",
    }
    assert "7.2" not in record["text"]
    assert set(record) <= set(RECORD_COLUMNS)


@pytest.mark.parametrize("name", ["three-lf.hl7", "three-crlf.hl7"])
def test_three_messages_with_lf_or_crlf_segment_ends(name: str) -> None:
    records = _records(_items(FIXTURES / name))
    assert [(number, record["id"], record["message_type"]) for number, record in records] == [
        (1, "doc/DOC-2001", "MDM^T02"),
        (2, "msg/C-2", "ORU^R01"),  # no OBR-3: the message control id
        (3, "doc/DOC_2003_", "MDM^T10"),  # "DOC 2003!": characters an id does not allow become _
    ]
    assert [record["text"] for _, record in records] == [
        f"Discharge summary one. {SECRET}",
        f"Lungs clear. {SECRET}",
        f"Consult note replaced. {SECRET}",
    ]
    assert records[1][1]["document_type"] == "Chest X-ray"
    assert "encounter" not in records[0][1]


def test_lf_and_crlf_files_give_the_same_items() -> None:
    assert _items(FIXTURES / "three-lf.hl7") == _items(FIXTURES / "three-crlf.hl7")


def test_mllp_framed_messages() -> None:
    records = _records(_items(FIXTURES / "mllp.hl7"))
    assert [(number, record["id"], record["text"]) for number, record in records] == [
        (1, "doc/DOC-3001", f"Framed note one. {SECRET}"),
        (2, "order/F-3002", f"Framed report two. {SECRET}"),
    ]


def test_bad_messages_are_rejected_by_position_without_text() -> None:
    items = _items(FIXTURES / "bad.hl7")
    assert _reasons(items) == [
        (1, f"message 1: ADT^A01 carries no document; {SUPPORTED}"),
        (2, "message 2: no MSH segment; the message starts with another segment"),
        (3, "message 3 (MDM^T02): no OBX of type TX, FT or ST"),
        (5, "message 5: not HL7 (no MSH segment)"),  # the garbage after message 4
        (6, "message 6 (MDM^T02): OBX text is empty"),
        (7, "message 7: not parseable: line 3 is not an HL7 segment"),
        (8, f"message 8: MDM^T01 carries no document; {SUPPORTED}"),
        (9, "message 9: not parseable"),  # "^" as field and component separator
        (10, "message 10 (MDM^T02): no OBX of type TX, FT or ST"),  # NM and ED only
        (11, "message 11 (MDM^T02): TXA-12 is too long for a document id (at most 200 characters)"),
    ]
    # the message before the garbage is whole
    assert [(n, r["id"], r["text"]) for n, r in _records(items)] == [
        (4, "order/F-4004", f"Report that survives the garbage. {SECRET}")
    ]
    reasons = " ".join(reason for _, reason in _reasons(items))
    for word in ("garbage", "Orphan", "PATIENT", "MRN", "Cut note", "LLLL", "DOC-", "Bad separators"):
        assert word not in reasons


def test_no_text_in_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    for path in sorted(FIXTURES.iterdir()):
        _items(path)
    assert SECRET not in caplog.text


def test_rereading_gives_the_same_ids() -> None:
    for path in sorted(FIXTURES.iterdir()):
        assert _items(path) == _items(path)


def test_a_resent_document_keeps_its_id(tmp_path: Path) -> None:
    original = (FIXTURES / "mdm-t02.hl7").read_bytes()
    resent = original.replace(b"|CTRL-0001|", b"|CTRL-9999|").replace(b"20240305101500", b"20240306080000")
    path = tmp_path / "resent.hl7"
    path.write_bytes(resent)
    assert _ids(path) == _ids(FIXTURES / "mdm-t02.hl7") == ["doc/DOC-1001"]


@pytest.mark.parametrize("read_size", [1, 2, 5])
def test_small_reads_give_the_same_items(read_size: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Messages are cut from a stream read piece by piece ("\\r\\n" split across reads included)."""
    expected = {path.name: _items(path) for path in sorted(FIXTURES.iterdir())}
    monkeypatch.setattr(hl7v2, "READ_SIZE", read_size)
    largest = 0

    class Counting(io.BytesIO):
        def read(self, size: int | None = -1, /) -> bytes:
            nonlocal largest
            assert size is not None and 0 < size <= read_size  # never the whole file at once
            data = super().read(size)
            largest = max(largest, len(data))
            return data

    for path in sorted(FIXTURES.iterdir()):
        assert list(file_items(Counting(path.read_bytes()))) == expected[path.name]
    assert largest == read_size


def test_byte_order_mark_and_blank_lines_are_skipped() -> None:
    data = b"\xef\xbb\xbf\r\n\r\n" + (FIXTURES / "mllp.hl7").read_bytes() + b"\n\n"
    assert [item for _, item in file_items(io.BytesIO(data))] == [
        item for _, item in _items(FIXTURES / "mllp.hl7")
    ]


def test_unescape_sequences() -> None:
    data = "MSH|^~\\&|A|B|C|D|20240101||MDM^T02|X1|P|2.5\rOBX|1|FT|||{}\r"

    def text(value: str) -> str:
        [(_, record)] = list(file_items(io.BytesIO(data.format(value).encode("utf-8"))))
        assert isinstance(record, dict)
        return str(record["text"])

    assert text("a\\.sp3\\b\\.ce\\c\\.in+4\\d\\H\\e\\N\\") == "a\n\n\nb\ncde"
    assert text("hex \\X48C3A9\\ end") == "hex Hé end"
    assert text("unknown \\Zfoo\\ and \\Cxx\\ gone") == "unknown  and  gone"
    assert text("dangling \\F") == "dangling \\F"
    huge = "9" * 5000  # no int() of it: Python refuses over 4300 digits
    assert text(f"odd \\X4\\ \\.sp²\\ \\.sp{huge}\\x") == "odd  \n \nx"


def test_latin_1_charset_from_msh_18() -> None:
    data = "MSH|^~\\&|A|B|C|D|20240101||ORU^R01|X2|P|2.5||||||8859/1\rOBX|1|TX|||café \\XE9\\\r"
    [(_, record)] = list(file_items(io.BytesIO(data.encode("latin-1"))))
    assert isinstance(record, dict)
    assert record["text"] == "café é"
    bad = data.replace("8859/1", "ISO-IR 87").encode("latin-1")
    [(_, error)] = list(file_items(io.BytesIO(bad)))
    assert isinstance(error, RecordError)
    assert error.reason.startswith("message 1: the MSH-18 character set is not supported")


# --- the push round trip -------------------------------------------------------------------------------


def _validate(paths: list[Path], settings: Settings) -> tuple[list[str], list[tuple[str, int, str]]]:
    """What a push of the hl7 files would accept (ids) and reject (file, message, reason)."""
    validator = Validator(
        load_preset("hl7"), max_text_bytes=settings.max_text_bytes, max_json_bytes=settings.chunk_max_bytes
    )
    accepted: list[str] = []
    rejected: list[tuple[str, int, str]] = []
    for path in paths:
        validator.start_file()
        for number, item in _items(path):
            result = validator.validate(str(path), number, item)
            if isinstance(result, Accepted):
                accepted.append(result.document.id)
            else:
                assert isinstance(result, Reject)
                rejected.append((path.name, result.line, result.reason))
    return accepted, rejected


def test_push_round_trip_to_the_queue(producer_settings: Settings, queued: Queue, tmp_path: Path) -> None:
    paths = [FIXTURES / "mdm-t02.hl7", FIXTURES / "oru-r01.hl7", FIXTURES / "mllp.hl7", FIXTURES / "bad.hl7"]
    accepted, rejected = _validate(paths, producer_settings)
    assert accepted == [
        "hl7:doc/DOC-1001",
        "hl7:order/F-778",
        "hl7:doc/DOC-3001",
        "hl7:order/F-3002",
        "hl7:order/F-4004",
    ]
    assert [(name, line) for name, line, _ in rejected] == [
        ("bad.hl7", n) for n in (1, 2, 3, 5, 6, 7, 8, 9, 10, 11)
    ]
    assert rejected[0][2] == f"message 1: ADT^A01 carries no document; {SUPPORTED}"

    rejects_path = tmp_path / "rejects.jsonl"
    summary = push_files(
        paths, load_preset("hl7"), ["classify"], producer_settings, rejects_path=rejects_path, progress=False
    )  # the format from the .hl7 suffix
    documents = [doc for chunk in queued() for doc in chunk.documents]
    assert [doc.id for doc in documents] == accepted
    assert summary.accepted == len(accepted)
    first = documents[0]
    assert first.kind == "ehr_note"
    assert first.text.startswith(f"Seen in clinic today. {SECRET}\n")
    assert first.metadata == MDM_METADATA
    text = rejects_path.read_text(encoding="utf-8")
    assert SECRET not in text
    rejects = [json.loads(line) for line in text.splitlines()]
    assert [(Path(r["file"]).name, r["line"], r["reason"]) for r in rejects] == rejected
