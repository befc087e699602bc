from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import rich.console

from nightclerk.producers import push as push_module
from nightclerk.producers.chunking import chunk_json_bytes, document_work
from nightclerk.producers.mapping import FieldMapping, load_preset
from nightclerk.producers.push import PushSummary, push_files
from nightclerk.shared.errors import BrokerUnavailable, ConfigError, InputError
from nightclerk.shared.messages import ChunkMessage
from nightclerk.shared.settings import Settings

SECRET = "PHI-SECRET-7f3a"
REPO = Path(__file__).resolve().parents[2]
NESTOR_FILE = REPO / "var" / "data" / "nestor" / "excavators-cleaned.csv"
NOTES = FieldMapping(
    kind="ehr_note", source="clinic", id_field="id", text_field="text", metadata_fields=["ward"]
)
Queue = Callable[[], list[ChunkMessage]]


def _push(paths: list[Path], mapping: FieldMapping, settings: Settings, tmp_path: Path) -> PushSummary:
    return push_files(
        paths, mapping, ["classify"], settings, rejects_path=tmp_path / "rejects.jsonl", progress=False
    )


def _rejects(tmp_path: Path) -> list[dict[str, Any]]:
    path = tmp_path / "rejects.jsonl"
    text = path.read_text(encoding="ascii")
    assert SECRET not in text
    rows = [json.loads(line) for line in text.splitlines()]
    assert all(set(row) == {"file", "line", "document_id", "reason"} for row in rows)
    return rows


def _queued_ids(queued: Queue, settings: Settings) -> list[str]:
    ids = []
    for chunk in queued():  # counts only in the assertions: a failure must not print note text
        count, work = len(chunk.documents), sum(document_work(doc) for doc in chunk.documents)
        assert count <= settings.chunk_max_docs
        assert count <= settings.chunk_docs or work < settings.chunk_docs + 1  # short notes share a chunk
        assert chunk_json_bytes(chunk) <= settings.chunk_max_bytes
        ids += [doc.id for doc in chunk.documents]
    return ids


@pytest.mark.parametrize(("chunk_docs", "chunk_max_bytes"), [(64, 1_000_000), (25, 40_000)])
def test_mtsamples_first_300_rows_all_accepted(
    mtsamples_300: Path,
    producer_settings: Settings,
    queued: Queue,
    tmp_path: Path,
    chunk_docs: int,
    chunk_max_bytes: int,
) -> None:
    limits = {"chunk_docs": chunk_docs, "chunk_max_bytes": chunk_max_bytes}
    settings = producer_settings.model_copy(update=limits)
    summary = _push([mtsamples_300], load_preset("mtsamples"), settings, tmp_path)
    assert (summary.accepted, summary.rejected) == (300, 0)
    with mtsamples_300.open(encoding="utf-8", newline="") as handle:
        records = {row["note_id"]: row for row in csv.DictReader(handle)}
    chunks = queued()
    assert summary.chunks == len(chunks) >= 300 // chunk_docs
    assert _queued_ids(queued, settings) == [f"mtsamples:{note_id}" for note_id in records]
    doc = chunks[0].documents[0]
    source = records[doc.source_id or ""]
    assert doc.text == source["transcription"]
    assert doc.metadata == {"specialty": source["specialty"], "sample_name": source["sample_name"]}
    assert _rejects(tmp_path) == []
    assert summary.files[0].accepted == 300


def test_nestor_rows_get_stable_distinct_ids(
    nestor_csv: Path, producer_settings: Settings, queued: Queue, tmp_path: Path
) -> None:
    first = _push([nestor_csv], load_preset("nestor"), producer_settings, tmp_path)
    second = _push([nestor_csv], load_preset("nestor"), producer_settings, tmp_path)
    assert (first.accepted, first.rejected, second.accepted) == (6, 0, 6)
    ids = _queued_ids(queued, producer_settings)
    expected = [
        "nestor:A-2004-07-01-1",
        "nestor:A-2004-07-01-2",
        "nestor:B-2004-07-01-1",
        "nestor:A-2005-03-20-1",
        "nestor:C-2006-05-05-1",
        "nestor:C-2006-05-05-2",
    ]
    assert ids == expected + expected  # the second push of the same file: the same ids
    doc = queued()[0].documents[0]
    assert doc.kind == "repair_ticket" and doc.text == "BUCKET WON'T OPEN"
    assert doc.metadata == {
        "Asset": "A",
        "BscStartDate": "2004-07-01",
        "PMType": "PM01",
        "MajorSystem": "Bucket",
    }


@pytest.mark.skipif(not NESTOR_FILE.is_file(), reason=f"{NESTOR_FILE} comes with `make data`")
def test_the_real_nestor_file(producer_settings: Settings, queued: Queue, tmp_path: Path) -> None:
    summary = _push([NESTOR_FILE], load_preset("nestor"), producer_settings, tmp_path)
    assert (summary.accepted, summary.rejected) == (5485, 0)
    ids = _queued_ids(queued, producer_settings)
    assert len(set(ids)) == len(ids) == 5485


def test_repushing_a_file_yields_the_same_ids(
    write_csv: Callable[..., Path], producer_settings: Settings, queued: Queue, tmp_path: Path
) -> None:
    mapping = NOTES.model_copy(update={"id_field": None})  # content hash
    path = write_csv("notes.csv", ["id", "text", "ward"], [[str(i), f"note {i}", "3B"] for i in range(5)])
    _push([path], mapping, producer_settings, tmp_path)
    _push([path], mapping, producer_settings, tmp_path)
    ids = _queued_ids(queued, producer_settings)
    assert ids[:5] == ids[5:] and len(set(ids)) == 5


def _csv_bytes(rows: list[tuple[str, bytes]]) -> bytes:
    return b"id,text,ward\n" + b"".join(b'%s,"%s",3B\n' % (i.encode(), text) for i, text in rows)


SECRET_B = SECRET.encode()
BAD_INPUTS: dict[str, tuple[str, bytes, FieldMapping, list[tuple[int, str]]]] = {
    "non-utf8 bytes in one record": (
        "n.csv",
        _csv_bytes([("1", b"ok"), ("2", b"caf\xe9 " + SECRET_B), ("3", b"fine")]),
        NOTES,
        [(3, "text: not valid UTF-8")],
    ),
    "a 50 MB note": (
        "n.csv",
        _csv_bytes([("1", b"ok"), ("2", SECRET_B + b"x" * (50 << 20)), ("3", b"fine")]),
        NOTES,
        [(3, f"text is {len(SECRET) + (50 << 20)} bytes, limit 500000")],
    ),
    "duplicate ids": (
        "n.csv",
        _csv_bytes([("1", b"ok"), ("2", b"two"), ("1", SECRET_B)]),
        NOTES,
        [(4, "duplicate id, first seen at {file}:2")],
    ),
    "unknown kind": (
        "n.jsonl",
        b'{"k": "ehr_note", "id": "1", "text": "ok"}\n{"k": "memo", "id": "2", "text": "%s"}\n'
        b'{"k": "literature", "id": "3", "text": "fine"}\n' % SECRET_B,
        FieldMapping(kind_field="k", source="clinic", id_field="id", text_field="text"),
        [(2, "k: unknown kind 'memo'; kinds: ehr_note, repair_ticket, literature")],
    ),
    "a truncated JSONL line": (
        "n.jsonl",
        b'{"id": "1", "text": "ok"}\n{"id": "2", "text": "%s is cut\n{"id": "3", "text": "fine"}\n'
        b'{"id": "4", "text": "last, cut too' % SECRET_B,
        NOTES.model_copy(update={"metadata_fields": []}),
        [(2, "invalid JSON: Unterminated string starting at: column 21"), (4, "invalid JSON: Unterminated")],
    ),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_records_are_rejected_and_nothing_else_is_lost(
    case: str, producer_settings: Settings, queued: Queue, tmp_path: Path
) -> None:
    name, content, mapping, expected = BAD_INPUTS[case]
    path = tmp_path / name
    path.write_bytes(content)
    summary = _push([path], mapping, producer_settings, tmp_path)
    rejects = _rejects(tmp_path)
    assert len(rejects) == len(expected)
    for reject, (line, reason) in zip(rejects, expected, strict=True):
        assert reject["line"] == line
        assert reject["reason"].startswith(reason.format(file=path)), reject["reason"]
    assert all(r["file"] == str(path) for r in rejects)
    assert summary.rejected == len(expected)
    chunks = queued()
    assert sum(len(chunk.documents) for chunk in chunks) == summary.accepted == 2
    assert all(SECRET not in doc.text for chunk in chunks for doc in chunk.documents)


def test_file_level_problems_stop_the_push_before_anything_is_queued(
    write_csv: Callable[..., Path], producer_settings: Settings, queued: Queue, tmp_path: Path
) -> None:
    good = write_csv("good.csv", ["id", "text", "ward"], [["1", "note", "3B"]])
    wrong = write_csv("wrong.csv", ["id", "body"], [["1", "note"]])
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    header_only = write_csv("header.csv", ["id", "text", "ward"], [])
    with pytest.raises(InputError, match=r"wrong.csv: missing column\(s\) text, ward .*mapping: id "):
        _push([good, wrong], NOTES, producer_settings, tmp_path)
    with pytest.raises(InputError, match=r"empty.csv is empty"):
        _push([good, empty], NOTES, producer_settings, tmp_path)
    with pytest.raises(InputError, match=r"header.csv has a header but no records"):
        _push([good, header_only], NOTES, producer_settings, tmp_path)
    with pytest.raises(ConfigError, match="unknown task"):
        push_files([good], NOTES, ["translate"], producer_settings, progress=False)
    assert queued() == []
    assert not (tmp_path / "rejects.jsonl").exists()


def test_no_broker_stops_the_push_before_anything(write_csv: Callable[..., Path], tmp_path: Path) -> None:
    good = write_csv("good.csv", ["id", "text", "ward"], [["1", "note", "3B"]])
    settings = Settings(redis_url="redis://127.0.0.1:1/0", queue="nowhere")
    with pytest.raises(BrokerUnavailable, match="no Redis answers"):
        _push([good], NOTES, settings, tmp_path)
    assert not (tmp_path / "rejects.jsonl").exists()


def test_mixed_kinds_go_to_separate_chunks_and_rejects_default_to_the_working_dir(
    producer_settings: Settings, queued: Queue, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "mixed.jsonl"
    kinds = ["ehr_note", "repair_ticket", "literature"]
    path.write_text(
        "".join(json.dumps({"k": kinds[i % 3], "id": str(i), "text": f"t{i}"}) + "\n" for i in range(30))
        + "{broken\n"
    )
    mapping = FieldMapping(kind_field="k", source="mix", id_field="id", text_field="text")
    settings = producer_settings.model_copy(update={"chunk_docs": 4, "chunk_max_docs": 4})
    summary = push_files([path], mapping, ["classify"], settings, progress=False)
    assert (summary.accepted, summary.rejected) == (30, 1)
    assert summary.rejects_path is not None and summary.rejects_path.parent == Path(".")
    assert summary.rejects_path.name.startswith("rejects-") and (tmp_path / summary.rejects_path).is_file()
    chunks = queued()
    assert sorted(len(c.documents) for c in chunks) == [2, 2, 2] + [4] * 6
    assert all(len({doc.kind for doc in c.documents}) == 1 for c in chunks)


def test_no_rejects_no_default_rejects_file(
    write_csv: Callable[..., Path],
    producer_settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    good = write_csv("good.csv", ["id", "text", "ward"], [["1", "note", "3B"]])
    summary = push_files([good], NOTES, ["classify"], producer_settings, progress=False)
    assert summary.rejects_path is None
    assert list(tmp_path.glob("rejects-*")) == []


def test_the_progress_bar_on_a_terminal(
    mtsamples_300: Path,
    producer_settings: Settings,
    queued: Queue,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(push_module, "PROGRESS_MIN_BYTES", 0)
    monkeypatch.setattr(rich.console.Console, "is_terminal", property(lambda self: True))
    summary = push_files(
        [mtsamples_300],
        load_preset("mtsamples"),
        ["classify"],
        producer_settings,
        rejects_path=tmp_path / "rejects.jsonl",
        progress=True,
    )
    assert summary.accepted == 300 == sum(len(c.documents) for c in queued())
