"""Fuzzing FHIR R4 intake (hypothesis, >= 10,000 files) through ``push_files --format fhir`` into Redis.

Generated: NDJSON bulk exports (``.ndjson``, one resource or Bundle per line, blank lines between) and
``.json`` files (one resource, or a Bundle of type collection, searchset, transaction, document -- or of
another type), with the ``fhir`` preset. Resources are DocumentReference (attachments), DiagnosticReport
(presented forms and a conclusion), Composition (nested sections with XHTML narratives), Patient and
others (skipped inside a Bundle, rejected alone), and things that are not resources. Each is good (valid,
unique id: its one record accepted with ``fhir:{type}/{id}``), bad (one certain defect: a required element
missing, an unknown element, an invalid date or id, every attachment unusable -- wrong content type, url
only, invalid base64, undecodable text, markup without text --, not a resource type that is read, not a
JSON object, not JSON: all its items rejected) or anything at all: attachments of any content type, any
charset parameter (unknown ones, and codecs that are not text encodings), base64 that is valid, truncated,
URL-safe, wrapped or not base64 at all, data of any bytes, any status, id, date, section and narrative,
big numbers, lone surrogates. Besides: byte-level accidents and raw garbage.

Asserted, besides ``push_and_check``'s generic properties (fuzz ``conftest.py``): for every NDJSON line
the number of items is one the generator allows (a resource gives one item when it is unusable as a
whole, else one per attachment or conclusion; a Bundle one when refused, else its entries' items; a blank
line none); a ``.json`` file's total likewise; good resources accepted with their ids, every item of a
bad one rejected.
"""

from __future__ import annotations

import base64
import html
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any, Literal

import pytest
from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

from nightclerk.producers.mapping import FieldMapping, load_preset
from nightclerk.producers.push import PushSummary
from nightclerk.producers.rejects import Reject
from nightclerk.producers.validation import Accepted
from nightclerk.shared.errors import InputError

SECRET = "PHI-SECRET-7f3a"
FUZZ_EXAMPLES = 10_000
MAPPING = load_preset("fhir")
NOTE_TYPES = ("DocumentReference", "DiagnosticReport", "Composition")
BUNDLE_TYPES = ("collection", "transaction", "searchset", "document")

BLANK_RUNS = st.integers(0, 2)
BLANK_LINES = st.sampled_from([b"", b"  ", b"\r"])

Verdict = Literal["good", "bad", "any"]
Decision = tuple[int, Accepted | Reject]
PushAndCheck = Callable[
    [bytes, str, FieldMapping, str | None], tuple[PushSummary | InputError, list[Decision]]
]


class Made:
    """A generated top-level value and what it may give: item counts, verdict, the good ids by entry."""

    def __init__(
        self, value: Any, counts: set[int], verdict: Verdict = "any", good: dict[int, str] | None = None
    ):
        self.value = value
        self.counts = counts
        self.verdict = verdict
        self.good = good or {}  # item number (1 for a lone resource, the entry for a Bundle) -> document id


CONTENT_TYPES = [
    "text/plain", "text/html", "TEXT/Plain", "text/plain; charset=utf-8", 'text/html; charset="ISO-8859-1"',
    "application/pdf", "image/png", "", "text", "text/", "/plain", "text/plain/x", ";", "text/plain;",
    "multipart/mixed; boundary=x", "text/plain; charset=", "text/plain; format=flowed",
]  # fmt: skip
CHARSETS = [
    "utf-8", "UTF-8", "latin-1", "iso-8859-1", "utf-16", "utf-16-le", "utf-7", "cp037", "ascii", "shift_jis",
    "idna", "punycode", "unicode_escape", "raw_unicode_escape", "utf-8-sig", "bogus-charset", "x" * 50,
    "rot13", "base64", "hex", "zlib", "bz2", "uu", "quopri", "undefined", "mbcs", "'utf-8'",
]  # fmt: skip
DATES = ["2024-03-05", "2024-03-05T10:15:00+01:00", "2024", "2024-13-40", "last week " + SECRET, "", 20240305]
STATUSES = {
    "DocumentReference": "current",
    "DiagnosticReport": "final",
    "Composition": "final",
}


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _encoded(text: str, charset: str) -> bytes:
    try:
        return text.encode(charset, errors="replace")
    except (LookupError, UnicodeError, TypeError, ValueError):
        return text.encode("utf-8", errors="surrogatepass")


@st.composite
def any_attachment(draw: st.DrawFn, values: dict[str, SearchStrategy[Any]]) -> Any:
    """Any attachment: content type, charset, data as base64 of any bytes (or not base64), url, or none."""
    if draw(st.integers(0, 12)) == 0:
        return draw(values["messy_json"])
    attachment: dict[str, Any] = {}
    # mostly a text type, so that the charset and the data are read; any other type or none sometimes
    common = st.sampled_from(["text/plain", "text/html", "TEXT/Plain"])
    content_type = draw(st.one_of(common, common, st.sampled_from([*CONTENT_TYPES, None])))
    charset = draw(st.sampled_from(CHARSETS))
    if content_type is not None:
        if draw(st.booleans()) and "charset" not in content_type:
            content_type = f"{content_type}; charset={charset}"
        attachment["contentType"] = content_type
    text: str = draw(values["messy_text"])
    if content_type and "html" in content_type.lower() and draw(st.booleans()):
        text = draw(
            st.sampled_from(
                [
                    f"<html><body><p>{html.escape(text)}</p></body></html>",
                    f"<p>unclosed <b>{text}",
                    f"<script>{SECRET}</script>",
                    f"<!-- {SECRET} -->",
                    f"<pre>  {html.escape(text)}\n  x</pre>",
                    f"&bogus; &#0; &#xD800; {text}",
                    f"<?xml version='1.0' encoding='bogus'?><p>{text}</p>",
                ]
            )
        )
    raw = draw(
        st.one_of(
            st.builds(_encoded, st.just(text), st.sampled_from([charset, "utf-8"])),
            st.binary(max_size=40),
            st.just(b""),
        )
    )
    data = draw(
        st.sampled_from(
            [
                _b64(raw),
                _b64(raw),
                _b64(raw),
                _b64(raw),
                _b64(raw)[:-1],
                base64.urlsafe_b64encode(raw).decode(),
                "\n".join(_b64(raw)[i : i + 4] for i in range(0, len(_b64(raw)), 4)),
                "@@@!",
                "abc",
                "====",
                "é" + _b64(raw),
                " ",
                None,
                12,
            ]
        )
    )
    if data is not None:
        attachment["data"] = data
    if draw(st.integers(0, 3)) == 0:
        attachment["url"] = draw(st.sampled_from(["http://example.org/n/1", "", 5]))
    if draw(st.integers(0, 9)) == 0:
        attachment[draw(st.sampled_from(["title", "language", "size", "hash", "creation", "note"]))] = draw(
            values["messy_json"]
        )
    return attachment


def _good_attachment(text: str, html_form: bool) -> dict[str, Any]:
    if html_form:
        markup = f"<html><body><h1>Note</h1><p>{html.escape(text)}</p></body></html>"
        return {"contentType": "text/html; charset=utf-8", "data": _b64(markup.encode())}
    return {"contentType": "text/plain", "data": _b64(text.encode("utf-8"))}


def _sources(resource: dict[str, Any]) -> int:
    if resource.get("resourceType") == "DocumentReference":
        content = resource.get("content")
        return len(content) if isinstance(content, list) else 0
    if resource.get("resourceType") == "DiagnosticReport":
        forms = resource.get("presentedForm")
        return (len(forms) if isinstance(forms, list) else 0) + isinstance(resource.get("conclusion"), str)
    return 1


def _counts(resource: Any) -> set[int]:
    """The item counts a lone resource may give."""
    if not isinstance(resource, dict) or resource.get("resourceType") not in NOTE_TYPES:
        return {1}
    return {1, max(_sources(resource), 1)}


@st.composite
def _metadata(draw: st.DrawFn, resource_type: str) -> dict[str, Any]:
    """Subject, encounter, date and title: values with the secret (they become metadata)."""
    fields: dict[str, Any] = {}
    if draw(st.booleans()):
        fields["subject"] = {"reference": f"Patient/p1 {SECRET}"}
    date = draw(st.sampled_from(["2024-03-05", "2024-03-05T10:15:00+01:00", "2024-03-05T10:15:00Z", None]))
    if date is not None and resource_type != "Composition" and "T" not in date:
        date += "T00:00:00Z"  # DocumentReference.date and DiagnosticReport.issued are instants
    if date is not None:
        fields["issued" if resource_type == "DiagnosticReport" else "date"] = date
    if resource_type == "DocumentReference" and draw(st.booleans()):
        fields["type"] = {"text": f"Progress note {SECRET}"}
        fields["context"] = {"encounter": [{"reference": f"Encounter/e1{SECRET}"}]}
    return fields


@st.composite
def good_resource(draw: st.DrawFn, values: dict[str, SearchStrategy[Any]], number: int) -> Made:
    """A valid resource with one source of text and the id good-{number}."""
    resource_type = draw(st.sampled_from(NOTE_TYPES))
    text = draw(values["good_text"])
    resource: dict[str, Any] = {"resourceType": resource_type, "id": f"good-{number}"}
    resource["status"] = STATUSES[resource_type]
    resource.update(draw(_metadata(resource_type)))
    if resource_type == "DocumentReference":
        resource["content"] = [{"attachment": _good_attachment(text, html_form=False)}]
        if draw(st.booleans()):  # readable text only, for the HTML form
            resource["content"] = [{"attachment": _good_attachment(f"Fever {SECRET} cough", html_form=True)}]
    elif resource_type == "DiagnosticReport":
        resource["code"] = {"text": f"Chest X-ray {SECRET}"}
        resource["conclusion"] = text
    else:
        resource.update(
            type={"text": "Discharge summary"},
            date="2024-03-08",
            title=f"Discharge {SECRET}",
            author=[{"reference": "Practitioner/d1"}],
            section=[
                {
                    "title": text,
                    "text": {
                        "status": "generated",
                        "div": f'<div xmlns="http://www.w3.org/1999/xhtml">{SECRET}</div>',
                    },
                }
            ],
        )
    return Made(resource, {1}, "good", {1: f"fhir:{resource_type}/good-{number}"})


@st.composite
def bad_resource(draw: st.DrawFn, values: dict[str, SearchStrategy[Any]], number: int) -> Made:
    """A value whose every item must be rejected."""
    made = draw(good_resource(values, number))
    resource = dict(made.value)
    resource_type = resource["resourceType"]
    defect = draw(
        st.sampled_from(
            ["required", "unknown", "date", "id", "attachments", "other-type", "not-object", "no-text"]
        )
    )
    if defect == "required":
        required = {"DocumentReference": "status", "DiagnosticReport": "code", "Composition": "author"}
        del resource[draw(st.sampled_from([required[resource_type], "status"]))]
    elif defect == "unknown":
        resource[draw(st.sampled_from(["note", "comment", "Text"]))] = SECRET
    elif defect == "date":
        resource["issued" if resource_type == "DiagnosticReport" else "date"] = f"last week {SECRET}"
    elif defect == "id":
        resource["id"] = draw(st.sampled_from(["bad id", "", "é1", 5, ["x"], "a/b"]))
    elif defect == "other-type":
        resource = {
            "resourceType": draw(st.sampled_from(["Patient", "Observation", "documentreference", "X"]))
        }
        resource["id"] = f"o-{number}"
        resource["name"] = [{"text": SECRET}]
    elif defect == "not-object":
        return Made(draw(st.sampled_from([[resource], SECRET, 5, None, True])), {1}, "bad")
    elif resource_type == "DocumentReference":  # attachments or no-text: every attachment unusable
        unusable = [
            {"contentType": "application/pdf", "data": _b64(SECRET.encode())},
            {"contentType": "text/plain", "url": "http://example.org/note/1"},
            {"contentType": "text/plain", "data": "abc"},
            {"contentType": "text/plain", "data": _b64(b" \n\t ")},
            {"contentType": "text/plain", "data": _b64(b"\xff\xfe" + SECRET.encode())},
            {
                "contentType": "text/html",
                "data": _b64(f"<script>{SECRET}</script><!-- {SECRET} -->".encode()),
            },
            {"data": _b64(SECRET.encode())},
        ]
        picks = draw(st.lists(st.sampled_from(unusable), min_size=1, max_size=3))
        resource["content"] = [{"attachment": attachment} for attachment in picks]
    elif resource_type == "DiagnosticReport":
        resource["conclusion"] = draw(st.sampled_from(["", " \n ", "\t"]))
    else:
        resource["section"] = draw(
            st.sampled_from(
                [[], [{"title": " "}], [{"text": {"status": "generated", "div": "<div> </div>"}}]]
            )
        )
    return Made(resource, _counts(resource), "bad")


@st.composite
def any_resource(draw: st.DrawFn, values: dict[str, SearchStrategy[Any]], earlier_ids: Sequence[Any]) -> Made:
    """A note resource built from any parts, another resource, or any JSON value."""
    choice = draw(st.integers(0, 12))
    if choice == 0:
        value = draw(values["messy_json"])
        return Made(value, _counts(value))
    if choice == 1:
        value = {"resourceType": draw(st.sampled_from(["Patient", "Encounter", 5, None, "Bundle "]))}
        if draw(st.booleans()):
            value["text"] = {"status": "generated", "div": f"<div>{SECRET}</div>"}
        return Made(value, {1})
    resource_type = draw(st.sampled_from(NOTE_TYPES))
    resource: dict[str, Any] = {"resourceType": resource_type}
    if draw(st.integers(0, 5)):
        resource["id"] = draw(
            st.one_of(
                st.sampled_from(["n-1", "n-2", "n-3", "x" * 65, "bad id", *earlier_ids]),
                values["messy_plain"],
            )
        )
    if draw(st.integers(0, 9)):
        resource["status"] = draw(
            st.sampled_from([STATUSES[resource_type]] * 6 + ["bogus", "", 5, "entered-in-error"])
        )
    resource.update(draw(_metadata(resource_type)))
    if draw(st.integers(0, 4)) == 0:
        resource["date" if resource_type != "DiagnosticReport" else "effectiveDateTime"] = draw(
            st.sampled_from(DATES)
        )
    attachments = st.lists(any_attachment(values), max_size=3)
    if resource_type == "DocumentReference":
        content = draw(attachments)
        resource["content"] = draw(
            st.sampled_from(
                [
                    [{"attachment": a} for a in content],
                    [{"attachment": a} for a in content],
                    [{"attachment": a} for a in content],
                    [{"attachment": a} if i else a for i, a in enumerate(content)],
                    content[0] if content else {},
                ]
            )
        )
    elif resource_type == "DiagnosticReport":
        resource["code"] = draw(
            st.sampled_from([{"text": "X-ray"}, {"coding": [{"display": SECRET}]}, "x", {}])
        )
        if draw(st.booleans()):
            resource["presentedForm"] = draw(attachments)
        if draw(st.booleans()):
            resource["conclusion"] = draw(st.one_of(values["messy_text"], values["messy_json"]))
    else:
        resource.update(type={"text": "t"}, date="2024-03-08", title=draw(values["messy_text"]))
        resource["author"] = [{"reference": "Practitioner/d1"}]
        resource["section"] = draw(_sections(values, depth=2))
    if draw(st.integers(0, 8)) == 0:
        resource[draw(st.sampled_from(["extension", "meta", "_status", "contained"]))] = draw(
            values["messy_json"]
        )
    return Made(resource, _counts(resource))


_DIVS = [
    '<div xmlns="http://www.w3.org/1999/xhtml"><p>{}</p></div>',
    "<div>{}</div>",
    '<div xmlns="http://www.w3.org/1999/xhtml"><table><tr><td>{}</td><td>b</td></tr></table></div>',
    "<div><p>unclosed {}",
    "{}",
    "<div><script>{}</script></div>",
    '<div xmlns="http://www.w3.org/1999/xhtml">&nbsp;&amp;&lt;&#233;&#x1F600;&bogus;{}</div>',
    "<div><![CDATA[{}]]></div>",
]


def _section_leaf(title: Any, div: str | None) -> dict[str, Any]:
    section: dict[str, Any] = {}
    if title is not None:
        section["title"] = title
    if div is not None:
        section["text"] = {"status": "generated", "div": div}
    return section


@st.composite
def _sections(draw: st.DrawFn, values: dict[str, SearchStrategy[Any]], depth: int) -> Any:
    if draw(st.integers(0, 10)) == 0:
        return draw(values["messy_json"])
    sections = []
    for _ in range(draw(st.integers(0, 3))):
        text = draw(values["messy_text"])
        div = draw(st.sampled_from([*_DIVS, None]))
        section = _section_leaf(
            draw(st.one_of(st.none(), values["messy_text"], st.integers())),
            div.format(html.escape(text) if draw(st.booleans()) else text) if div else None,
        )
        if depth and draw(st.booleans()):
            section["section"] = draw(_sections(values, depth - 1))
        sections.append(section)
    return sections


def _sums(options: Sequence[set[int]]) -> set[int]:
    totals = {0}
    for choice in options:
        totals = {total + n for total in totals for n in choice}
    return totals


@st.composite
def bundle(draw: st.DrawFn, values: dict[str, SearchStrategy[Any]], first_number: int) -> Made:
    """A Bundle of good, bad, other and any entries; good ids only count when the Bundle itself is fine."""
    bundle_type = draw(
        st.sampled_from([*BUNDLE_TYPES, "history", "batch-response", "", None, 5, "Collection"])
    )
    value: dict[str, Any] = {"resourceType": "Bundle", "id": draw(st.sampled_from(["b1", "bad id"]))}
    if bundle_type is not None:
        value["type"] = bundle_type
    clean = bundle_type in BUNDLE_TYPES and value["id"] == "b1"
    if draw(st.integers(0, 6)) == 0:
        value[draw(st.sampled_from(["total", "timestamp", "unknown", "link"]))] = draw(values["messy_json"])
        clean = False
    entries: list[Any] = []
    options: list[set[int]] = []
    good: dict[int, str] = {}
    for index in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(["good", "bad", "any", "other", "raw"]))
        if kind == "other":
            entries.append({"resource": {"resourceType": "Patient", "id": "p1", "name": [{"text": SECRET}]}})
            options.append({0})
            continue
        if kind == "raw":
            entry = draw(st.sampled_from([5, "x", None, {"request": {"method": "DELETE"}}, {"resource": 5}]))
            entries.append(entry)
            options.append({0} if isinstance(entry, dict) and "resource" not in entry else {1})
            continue
        made = draw(
            good_resource(values, first_number + index)
            if kind == "good"
            else bad_resource(values, first_number + index)
            if kind == "bad"
            else any_resource(values, [])
        )
        resource = made.value
        entries.append({"fullUrl": f"urn:uuid:{index}", "resource": resource})
        is_note = isinstance(resource, dict) and resource.get("resourceType") in NOTE_TYPES
        options.append(
            made.counts if is_note else {0} if isinstance(resource, dict) or resource is None else {1}
        )
        if made.verdict == "good":
            good[index + 1] = made.good[1]
    value["entry"] = draw(st.sampled_from([entries, entries, {"not": "a list"}])) if entries else entries
    if not isinstance(value["entry"], list):
        clean = False
    return Made(
        value, {1} | _sums(options) if bundle_type in BUNDLE_TYPES else {1}, "any", good if clean else {}
    )


@st.composite
def fhir_files(
    draw: st.DrawFn,
    values: dict[str, SearchStrategy[Any]],
    to_json: Callable[..., bytes],
    mutate: Callable[[bytes], SearchStrategy[bytes]],
) -> tuple[str, str, bytes, list[tuple[int, Made]]]:
    """(mode, file name, bytes, [(line or 0 for a .json file, what was written there)])."""
    mode = draw(st.sampled_from(["ndjson"] * 5 + ["json"] * 3 + ["mutated", "garbage"]))
    if mode == "garbage":
        return mode, draw(st.sampled_from(["export.ndjson", "bundle.json"])), draw(values["garbage"]), []
    made: list[Made] = []
    count = 1 if mode == "json" else draw(st.integers(0, 5))
    for index in range(count):
        number = index * 10
        ids = [
            m.value.get("id")
            for m in made
            if isinstance(m.value, dict) and isinstance(m.value.get("id"), str)
        ]
        kind = draw(st.sampled_from(["good", "good", "bad", "any", "any", "bundle", "broken"]))
        if kind == "good":
            made.append(draw(good_resource(values, number)))
        elif kind == "bad":
            made.append(draw(bad_resource(values, number)))
        elif kind == "bundle":
            made.append(draw(bundle(values, number)))
        elif kind == "broken":
            made.append(Made(None, {1}, "bad"))
        else:
            made.append(draw(any_resource(values, ids)))

    def written(item: Made) -> bytes:
        """The item as JSON; raw lone surrogates (CESU-8) make it undecodable: one reject, nothing good."""
        if item.value is None:
            return b'{"resourceType": "DocumentReference", "id": ' + SECRET.encode()
        data = to_json(item.value, ascii_only=draw(st.booleans()))
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            item.counts, item.good = {1}, {}
        return data

    if mode == "json":
        item = made[0]
        data = draw(st.sampled_from([b"", b"\xef\xbb\xbf"])) + written(item)
        return mode, "bundle.json", data, [(0, item)]
    lines: list[bytes] = []
    placed: list[tuple[int, Made]] = []
    for item in made:
        for _ in range(draw(BLANK_RUNS)):
            lines.append(draw(BLANK_LINES))  # blank lines give nothing
        lines.append(written(item))
        placed.append((len(lines), item))
    data = b"\n".join(lines) + draw(st.sampled_from([b"", b"\n"]))
    if mode == "mutated":
        return mode, "export.ndjson", draw(mutate(data)), []
    return mode, "export.ndjson", data, placed


@pytest.mark.fuzz
def test_fuzz_fhir(
    run_fuzz: Callable[[SearchStrategy[Any], Callable[[Any], None]], None],
    fuzz_values: dict[str, SearchStrategy[Any]],
    to_json_bytes: Callable[..., bytes],
    mutate: Callable[[bytes], SearchStrategy[bytes]],
    push_and_check: PushAndCheck,
) -> None:
    def one_file(case: tuple[str, str, bytes, list[tuple[int, Made]]]) -> None:
        mode, name, data, placed = case
        outcome, decisions = push_and_check(data, name, MAPPING, "fhir")
        if mode in ("mutated", "garbage"):
            return
        if any(made.good for _, made in placed):
            assert isinstance(outcome, PushSummary), f"a file with a good resource was refused: {outcome}"
        if not isinstance(outcome, PushSummary):
            return
        if mode == "json":
            ((_, made),) = placed
            assert len(decisions) in made.counts, f"{len(decisions)} items, allowed {sorted(made.counts)}"
            _check_made(made, decisions)
            return
        per_line = Counter(line for line, _ in decisions)
        placed_lines = {line for line, _ in placed}
        assert set(per_line) <= placed_lines, "items from a blank line"
        for line, made in placed:
            assert per_line[line] in made.counts, (
                f"line {line}: {per_line[line]} items, allowed {made.counts}"
            )
            _check_made(made, [(n, r) for n, r in decisions if n == line], lone=True)

    run_fuzz(fhir_files(fuzz_values, to_json_bytes, mutate), one_file)


def _check_made(made: Made, decisions: list[Decision], lone: bool = False) -> None:
    """Good ids accepted (at their entry number, or anywhere on an NDJSON line); bad ones all rejected."""
    if made.verdict == "bad":
        assert all(isinstance(result, Reject) for _, result in decisions), (
            "an item of a bad resource accepted"
        )
    accepted = {(n, r.document.id) for n, r in decisions if isinstance(r, Accepted)}
    for number, document_id in made.good.items():
        if lone or not isinstance(made.value, dict) or made.value.get("resourceType") != "Bundle":
            assert document_id in {doc_id for _, doc_id in accepted}, f"good {document_id} not accepted"
        else:
            assert (number, document_id) in accepted, f"good entry {number} ({document_id}) not accepted"
