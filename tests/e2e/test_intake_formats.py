"""Every intake format from its source file to result rows: push -> Redis -> a real worker -> PostgreSQL.

FHIR, HL7 v2, PubMed XML and ticketing exports (Jira, ServiceNow) from the hand-written fixtures of
tests/producers; the tiny packs stand in for the real ones.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

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


def test_each_format_ends_as_one_result_row_per_accepted_document(
    cluster_env: dict[str, str],
    make_cluster: Callable[[dict[str, str]], Any],
    accepted_ids: Callable[..., set[str]],
    push: Callable[..., Any],
    wait_for: Callable[..., Any],
) -> None:
    cluster = make_cluster(cluster_env)
    store = cluster.store()
    expected: dict[str, set[str]] = {}
    try:
        cluster.start("a")
        for name, mapping, fmt in PUSHES:
            options = ["--format", fmt] if fmt else []
            push(FIXTURES / name, cluster_env, *options, mapping=mapping, status=(0, 3))  # 3: some rejected
            expected[name] = accepted_ids(FIXTURES / name, mapping, fmt)
            assert expected[name], name
        everything = set().union(*expected.values())
        wait_for(lambda: store.count() >= len(everything), 120, "every result", every=0.5)
        rows = list(store.rows())
        assert sorted(r.document_id for r in rows) == sorted(everything)  # each once, nothing else
        assert {r.task for r in rows} == {"classify"}
    finally:
        cluster.stop_all()
        store.close()
