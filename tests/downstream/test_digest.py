"""The literature digest: what it collects, and what a reader sees in headless Chromium."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nightclerk.cli.main import app
from nightclerk.downstream.digest import UNLABELLED, collect, render_html, render_markdown
from nightclerk.shared.results import LabelScore, ResultRow
from nightclerk.shared.settings import get_settings
from nightclerk.shared.store import ResultStore

NOW = datetime(2026, 11, 22, 7, 0, tzinfo=UTC)
HOSTILE = "<script>alert('x')</script> & more"


def row(doc: str, task: str, minutes_ago: int, *, label: str | None = None, summary: str | None = None,
        kind: str = "literature") -> ResultRow:  # fmt: skip
    return ResultRow(
        document_id=doc, kind=kind, task=task, pack_name="p", pack_version="v1", precision="int8",
        labels=[LabelScore(label=label, score=0.8)] if label else [], summary=summary, worker_id="w",
        chunk_id="c", created_at=NOW - timedelta(minutes=minutes_ago),
    )  # fmt: skip


def night() -> list[ResultRow]:
    return [
        row("pubmed:101", "classify", 300, label="Randomized Controlled Trial"),
        row("pubmed:101", "summarize", 299, summary="Aspirin halves the risk in older adults."),
        row("pubmed:102", "classify", 200, label="Review"),
        row("pubmed:102", "summarize", 199, summary=HOSTILE),
        row("pubmed:103", "classify", 100, label="Review"),
        row("pubmed:104", "summarize", 90, summary="Only summarized."),  # never classified
        row("pubmed:105", "classify", 60 * 30, label="Review"),  # before the window
        row("mtsamples:9", "classify", 50, label="Surgery", kind="ehr_note"),  # not literature
    ]


def test_papers_are_grouped_by_label_with_their_summaries_and_the_hours_counted() -> None:
    digest = collect(night(), NOW - timedelta(hours=12), NOW)
    assert digest.papers == 4
    assert list(digest.groups) == [
        "Review",
        UNLABELLED,
        "Randomized Controlled Trial",
    ]  # largest, then by name
    review = digest.groups["Review"]
    assert [(p.pmid, p.summary) for p in review] == [("102", HOSTILE), ("103", None)]
    assert review[0].url == "https://pubmed.ncbi.nlm.nih.gov/102/"
    assert [(b.name, b.value) for b in digest.per_label] == [
        ("Review", 2),
        (UNLABELLED, 1),
        ("Randomized Controlled Trial", 1),
    ]
    assert sum(b.value for b in digest.per_hour) == 6  # results (not papers) stored in the window
    assert len(digest.per_hour) == 12 and max(b.width_pct for b in digest.per_hour) == 100.0


def test_generated_text_is_escaped_and_the_page_loads_nothing_from_outside() -> None:
    page = render_html(collect(night(), NOW - timedelta(hours=12), NOW))
    assert HOSTILE not in page and "&lt;script&gt;" in page
    assert "<script" not in page and "src=" not in page and "<link" not in page
    markdown = render_markdown(collect(night(), NOW - timedelta(hours=12), NOW))
    assert "## Review (2)" in markdown and "[PMID 101](https://pubmed.ncbi.nlm.nih.gov/101/)" in markdown


@pytest.fixture
def browser() -> Iterator[object]:
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if chromium is None or driver is None:
        why = "Debian's chromium and chromium-driver are not installed (make test installs them as root)"
        if os.environ.get("CI") == "true":
            pytest.fail(why)
        pytest.skip(why)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(flag)
    session = webdriver.Chrome(service=Service(driver), options=options)
    yield session
    session.quit()


def test_the_digest_command_writes_a_page_a_reader_can_use(
    browser: object, postgres_url: str, pg_schema: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.remote.webdriver import WebDriver

    assert isinstance(browser, WebDriver)
    store = ResultStore(postgres_url, schema=pg_schema)
    store.create_schema()
    now = datetime.now(UTC)
    store.upsert([r.model_copy(update={"created_at": now - (NOW - r.created_at)}) for r in night()])
    store.close()
    monkeypatch.setenv("NIGHTCLERK_DATABASE_URL", postgres_url)
    monkeypatch.setenv("NIGHTCLERK_DATABASE_SCHEMA", pg_schema)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["digest", "--since", "12h", "--out", str(tmp_path / "night.html")])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert "4 papers in 3 groups" in result.output and (tmp_path / "night.md").is_file()

    browser.get((tmp_path / "night.html").as_uri())
    assert browser.find_element(By.TAG_NAME, "h1").text == "Literature digest"
    headings = [h.text for h in browser.find_elements(By.CSS_SELECTOR, "section.group h2")]
    assert headings[0] == "Review (2)" and set(headings) == {
        "Review (2)",
        f"{UNLABELLED} (1)",
        "Randomized Controlled Trial (1)",
    }
    links = {a.text: a.get_attribute("href") for a in browser.find_elements(By.CSS_SELECTOR, "ol.papers a")}
    assert links["PMID 101"] == "https://pubmed.ncbi.nlm.nih.gov/101/" and len(links) == 4
    summaries = [p.text for p in browser.find_elements(By.CSS_SELECTOR, "p.summary")]
    assert "Aspirin halves the risk in older adults." in summaries and HOSTILE in summaries  # shown as text
    assert browser.execute_script("return document.scripts.length") == 0
    bars = browser.find_elements(By.CSS_SELECTOR, "#per-label g.bar rect")
    assert len(bars) == 3 and all(bar.is_displayed() for bar in bars)
    widths = [float(bar.get_attribute("width")) for bar in bars]
    assert widths[0] == max(widths) == 200.0 and widths[1] == 100.0  # Review (2) is twice the others
    hours = browser.find_elements(By.CSS_SELECTOR, "#per-hour g.bar")
    assert sum(int(g.get_attribute("data-value")) for g in hours) == 6
