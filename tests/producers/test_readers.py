from __future__ import annotations

from pathlib import Path

import pytest

from nightclerk.producers.readers import RecordError, RecordReader, detect_format, inspect_file
from nightclerk.shared.errors import InputError


def _items(path: Path, fmt: str) -> list[tuple[int, object]]:
    with RecordReader(path, "csv" if fmt == "csv" else "jsonl") as reader:
        return list(reader)


def test_format_by_extension_or_option(tmp_path: Path) -> None:
    assert detect_format(Path("a.CSV")) == "csv"
    assert detect_format(Path("a.jsonl")) == "jsonl"
    assert detect_format(Path("a.ndjson")) == "jsonl"
    assert detect_format(Path("a.txt"), "csv") == "csv"
    with pytest.raises(InputError, match="--format"):
        detect_format(Path("a.txt"))
    with pytest.raises(InputError, match="unknown format 'xml'"):
        detect_format(Path("a.csv"), "xml")


def test_csv_records_carry_the_line_they_start_on(tmp_path: Path) -> None:
    path = tmp_path / "n.csv"
    path.write_bytes(
        b"\xef\xbb\xbfid, text\r\n"  # byte-order mark and a space after the comma in the header
        b'1,"first\nspans two lines"\r\n'
        b"\r\n"
        b"2,second\r\n"
        b"3,too,many\r\n"
        b"4,last"
    )
    items = _items(path, "csv")
    assert items[0] == (2, {"id": "1", "text": "first\nspans two lines"})
    assert items[1] == (5, {"id": "2", "text": "second"})
    assert items[2] == (6, RecordError("record has 3 fields, the header has 2"))
    assert items[3] == (7, {"id": "4", "text": "last"})


def test_malformed_quoting_rejects_the_record(tmp_path: Path) -> None:
    path = tmp_path / "n.csv"
    path.write_bytes(b'id,text\n1,"a "quoted" word"\n2,fine\n3,"cut off in the mid')
    assert _items(path, "csv") == [
        (2, RecordError("unreadable CSV record: ',' expected after '\"'")),
        (3, {"id": "2", "text": "fine"}),
        (4, RecordError("unreadable CSV record: unexpected end of data")),
    ]
    bad_header = tmp_path / "h.csv"
    bad_header.write_bytes(b'id,"te"xt\n1,a\n')
    with pytest.raises(InputError, match="header line is not valid CSV"):
        inspect_file(bad_header, "csv")


def test_undecodable_bytes_stay_in_their_record(tmp_path: Path) -> None:
    path = tmp_path / "n.csv"
    path.write_bytes(b"id,text\n1,caf\xe9 latin-1\n2,caf\xc3\xa9 utf-8\n")
    items = _items(path, "csv")
    assert items[0] == (2, {"id": "1", "text": "caf\udce9 latin-1"})
    assert items[1] == (3, {"id": "2", "text": "café utf-8"})


def test_a_huge_csv_field_is_read_not_refused(tmp_path: Path) -> None:
    path = tmp_path / "n.csv"
    path.write_text("id,text\n1," + "x" * 300_000 + "\n2,small\n")
    items = _items(path, "csv")
    assert [line for line, _ in items] == [2, 3]
    assert len(items[0][1]["text"]) == 300_000  # type: ignore[index]


def test_jsonl_bad_lines_are_errors_and_reading_goes_on(tmp_path: Path) -> None:
    path = tmp_path / "n.jsonl"
    path.write_bytes(
        b'{"id": 1, "text": "one"}\n'
        b"\n"
        b'{"id": 2, "text": "trunc\n'
        b"[1, 2]\n"
        b'{"id": 3, "text": "caf\xe9"}\n'
        b'{"id": 4, "text": "four"}'
    )
    items = _items(path, "jsonl")
    assert items[0] == (1, {"id": 1, "text": "one"})
    line, error = items[1]
    assert line == 3 and isinstance(error, RecordError)
    assert error.reason == "invalid JSON: Unterminated string starting at: column 19"
    assert items[2] == (4, RecordError("line is not a JSON object"))
    assert items[3] == (5, {"id": 3, "text": "caf\udce9"})
    assert items[4] == (6, {"id": 4, "text": "four"})


def test_a_number_too_long_for_python_is_a_reject_not_a_crash(tmp_path: Path) -> None:
    """Found by the fuzz tests: json.loads raises a plain ValueError for an integer of over 4,300 digits."""
    big = b"9" * 4_400
    lines = tmp_path / "n.jsonl"
    lines.write_bytes(b'{"id": 1, "n": ' + big + b'}\n{"id": 2, "text": "two"}\n')
    assert _items(lines, "jsonl") == [
        (1, RecordError("invalid JSON: a number too long to read")),
        (2, {"id": 2, "text": "two"}),
    ]
    document = tmp_path / "n.json"
    document.write_bytes(b'[{"id": 1, "n": ' + big + b"}]")
    with RecordReader(document, "json") as reader:
        assert list(reader) == [(1, RecordError("invalid JSON: a number too long to read"))]


def test_inspect_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    shape = inspect_file(empty, "csv")
    assert (shape.columns, shape.has_records) == ([], False)
    header_only = tmp_path / "header.csv"
    header_only.write_text("id,text\n\n")
    shape = inspect_file(header_only, "csv")
    assert (shape.columns, shape.has_records, shape.header) == (["id", "text"], False, True)
    jsonl = tmp_path / "n.jsonl"
    jsonl.write_text('{"a": 1}\nnot json\n{"b": 2, "a": 3}\n')
    shape = inspect_file(jsonl, "jsonl")
    assert (shape.columns, shape.has_records, shape.header) == (["a", "b"], True, False)
    blank = tmp_path / "blank.jsonl"
    blank.write_text("\n  \n")
    assert not inspect_file(blank, "jsonl").has_records


def test_bytes_read_follows_the_file(tmp_path: Path) -> None:
    path = tmp_path / "n.jsonl"
    path.write_text("".join(f'{{"id": {i}, "text": "{"y" * 1000}"}}\n' for i in range(3000)))
    with RecordReader(path, "jsonl") as reader:
        assert reader.size == path.stat().st_size
        for _ in zip(range(10), reader, strict=False):
            pass
        assert 0 < reader.bytes_read < reader.size
        for _ in reader:
            pass
        assert reader.bytes_read == reader.size


def test_a_missing_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot open"):
        RecordReader(tmp_path / "nope.csv", "csv")
