"""The overnight literature digest: the night's papers from the result store, as one HTML page and Markdown.

Papers (``literature`` results since a moment) are grouped by their top ``classify`` label. Each one shows
its ``summarize`` summary, when there is one, and a link to PubMed by PMID (the source id of a ``pubmed:``
document). Two charts sit at the top: papers per label, and results stored per hour (the night's
throughput).

The page is self-contained, so it can be mailed or opened offline: inline CSS and inline SVG, with no script
and no external file. The bar charts are a few SVG rectangles drawn in the template, not a charting library
(which would bring JavaScript or a plotting stack for two bar charts). Jinja2 renders both formats; the HTML
template escapes everything, since summaries are generated text.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from jinja2 import Environment, PackageLoader, select_autoescape

from nightclerk.shared.results import ResultRow
from nightclerk.shared.store import ResultStore

KIND = "literature"
UNLABELLED = "(not classified)"
PUBMED_URL = "https://pubmed.ncbi.nlm.nih.gov/{pmid}/"


@dataclass(frozen=True)
class Paper:
    document_id: str
    pmid: str | None
    label: str
    score: float | None
    summary: str | None

    @property
    def url(self) -> str | None:
        return PUBMED_URL.format(pmid=self.pmid) if self.pmid else None


@dataclass(frozen=True)
class Bar:
    name: str
    value: int
    width_pct: float  # of the longest bar


@dataclass
class Digest:
    since: datetime
    until: datetime
    groups: dict[str, list[Paper]] = field(default_factory=dict)  # label -> papers, largest group first
    per_label: list[Bar] = field(default_factory=list)
    per_hour: list[Bar] = field(default_factory=list)

    @property
    def papers(self) -> int:
        return sum(len(papers) for papers in self.groups.values())


def _pmid(document_id: str) -> str | None:
    source, _, rest = document_id.partition(":")
    return rest if source == "pubmed" and rest.isdigit() else None


def _bars(counts: list[tuple[str, int]]) -> list[Bar]:
    top = max((value for _, value in counts), default=0) or 1
    return [Bar(name, value, round(100 * value / top, 1)) for name, value in counts]


def collect(rows: list[ResultRow], since: datetime, until: datetime) -> Digest:
    """The digest of ``rows`` (literature results of any task) stored in [since, until)."""
    classified: dict[str, ResultRow] = {}
    summaries: dict[str, str | None] = {}
    hours: Counter[datetime] = Counter()
    for row in rows:
        if row.kind != KIND or not since <= row.created_at < until:
            continue
        hours[row.created_at.replace(minute=0, second=0, microsecond=0)] += 1
        if row.task == "classify":
            classified[row.document_id] = row
        elif row.task == "summarize":
            summaries[row.document_id] = row.summary
    groups: defaultdict[str, list[Paper]] = defaultdict(list)
    for document_id in sorted(classified.keys() | summaries.keys()):
        labelled = classified.get(document_id)
        label = (labelled.top_label if labelled is not None else None) or UNLABELLED
        score = labelled.top_score if labelled is not None else None
        groups[label].append(Paper(document_id, _pmid(document_id), label, score, summaries.get(document_id)))
    ordered = dict(sorted(groups.items(), key=lambda item: (-len(item[1]), item[0])))
    start = since.replace(minute=0, second=0, microsecond=0)
    hour_marks = [start + timedelta(hours=i) for i in range(int((until - start).total_seconds() // 3600) + 1)]
    return Digest(
        since=since,
        until=until,
        groups=ordered,
        per_label=_bars([(label, len(papers)) for label, papers in ordered.items()]),
        per_hour=_bars([(f"{hour:%H:%M}", hours.get(hour, 0)) for hour in hour_marks if hour < until]),
    )


def from_store(store: ResultStore, since: datetime, until: datetime) -> Digest:
    return collect(list(store.rows(kind=KIND, since=since)), since, until)


_ENV = Environment(
    loader=PackageLoader("nightclerk.downstream", "templates"),
    autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
    trim_blocks=True,
    lstrip_blocks=True,
)


def render_html(digest: Digest) -> str:
    return _ENV.get_template("digest.html").render(digest=digest)


def render_markdown(digest: Digest) -> str:
    return _ENV.get_template("digest.md").render(digest=digest)


def write(digest: Digest, html_path: Path) -> tuple[Path, Path]:
    """``html_path`` and the Markdown beside it (same name, ``.md``)."""
    markdown_path = html_path.with_suffix(".md")
    html_path.write_text(render_html(digest), encoding="utf-8")
    markdown_path.write_text(render_markdown(digest), encoding="utf-8")
    return html_path, markdown_path
