"""Every intake format from its source file to result rows: push -> Redis -> a real worker -> PostgreSQL.

FHIR, HL7 v2, PubMed XML and ticketing exports (Jira, ServiceNow) from the hand-written fixtures of
tests/producers; the tiny packs stand in for the real ones.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from nightclerk.cli.worker_process import WorkerProcess, nightclerk_env
from nightclerk.shared.store import ResultStore

pytestmark = pytest.mark.slow

FIXTURES = Path(__file__).resolve().parents[1] / "producers" / "fixtures"
PUSHES = [  # (file, mapping, --format or None to go by the suffix)
    ("fhir/export.ndjson", "fhir", "fhir"),
    ("fhir/document-bundle.json", "fhir", "fhir"),
    ("hl7/mllp.hl7", "hl7", None),
    ("ticketing/jira-search.json", "jira", None),
    ("ticketing/servicenow-incidents.csv", "servicenow", None),
    ("pubmed/articles.xml", "pubmed_xml", None),
]


def accepted_ids(path: Path, mapping: str, fmt: str | None) -> set[str]:
    """The ids push accepts from ``path``: the same reader and validator, in this process."""
    from nightclerk.producers.mapping import load_preset
    from nightclerk.producers.readers import RecordReader, detect_format
    from nightclerk.producers.validation import Accepted, Validator

    validator = Validator(load_preset(mapping), max_text_bytes=500_000, max_json_bytes=1_000_000)
    with RecordReader(path, detect_format(path, fmt)) as reader:
        results = [validator.validate(str(path), line, record) for line, record in reader]
    return {result.document.id for result in results if isinstance(result, Accepted)}


def test_each_format_ends_as_one_result_row_per_accepted_document(
    redis_url: str, queue_name: str, tiny_packs: Path, postgres_url: str, pg_schema: str, tmp_path: Path
) -> None:
    settings = {
        "redis_url": redis_url, "queue": queue_name, "packs_dir": str(tiny_packs), "data_dir": str(tmp_path),
        "database_url": postgres_url, "database_schema": pg_schema, "feed_stream": f"{queue_name}:results",
        "log_json": "true",
    }  # fmt: skip
    env = nightclerk_env(settings)
    store = ResultStore(postgres_url, schema=pg_schema)
    store.create_schema()
    expected: dict[str, set[str]] = {}
    worker = WorkerProcess(settings, tmp_path / "worker.log").start()
    try:
        for name, mapping, fmt in PUSHES:
            rejects = tmp_path / f"{Path(name).stem}.rejects.jsonl"
            args = [
                "push",
                str(FIXTURES / name),
                "--mapping",
                mapping,
                "--rejects",
                str(rejects),
                "--no-progress",
            ]
            result = subprocess.run(
                [sys.executable, "-m", "nightclerk.cli.main", *args, *(["--format", fmt] if fmt else [])],
                env=env, capture_output=True, text=True, timeout=120,
            )  # fmt: skip
            assert result.returncode in (0, 3), result.stderr[-2000:]  # 3: some records rejected
            expected[name] = accepted_ids(FIXTURES / name, mapping, fmt)
            assert expected[name], name
        everything = set().union(*expected.values())
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and store.count() < len(everything):
            time.sleep(0.5)
        rows = list(store.rows())
        assert sorted(r.document_id for r in rows) == sorted(everything)  # each once, nothing else
        assert {r.task for r in rows} == {"classify"}
    finally:
        worker.stop()
        store.drop()
        store.close()
