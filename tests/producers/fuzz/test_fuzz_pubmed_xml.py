"""Fuzzing PubMed/MEDLINE XML intake (hypothesis, >= 10,000 files) through ``push_files`` into Redis.

Generated: ``.xml`` and ``.xml.gz`` files for the ``pubmed_xml`` preset: a ``PubmedArticleSet`` of 0-5
articles, with or without an XML declaration (UTF-8; UTF-16 and ISO-8859-1 with the bytes to match), with
no DOCTYPE, NLM's public DOCTYPE, or an internal subset declaring entities (a nested "billion laughs" one,
and an external one naming ``file:///etc/passwd``), comments and processing instructions between
articles, plain or gzip-compressed. Article text is any XML-valid text, escaped, in CDATA sections, with
character references and inline markup; structured abstracts with labels; MeSH terms; publication types;
dates as Year/Month/Day or MedlineDate. Each article is good (PMID, a title with text: accepted as
``pubmed:{PMID}``), bad (one certain defect: no PMID or an empty one, a PMID no id allows, no title and no
abstract or only blanks and markup, an abstract over the text limit, a repeated PMID: rejected) or anything
at all. Besides: byte-level accidents (XML that breaks off, invalid bytes, corrupt or truncated gzip
streams) and raw garbage.

Asserted, besides ``push_and_check``'s generic properties (fuzz ``conftest.py``): a well-formed file gives
exactly one decision per article, numbered 1..n (accepted + rejected == articles); good articles are
accepted with their ids and bad ones rejected; in any file, a read error ("not well-formed", "compressed
data unreadable") is one reject and the last decision; no external entity is ever resolved (no text of
``/etc/passwd`` in an enqueued document).
"""

from __future__ import annotations

import gzip
import re
from collections.abc import Callable, Sequence
from typing import Any, Literal
from xml.sax.saxutils import escape, quoteattr

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
MAX_TEXT_BYTES = 3_000  # the fuzz conftest's limit
MAPPING = load_preset("pubmed_xml")
# characters XML 1.0 does not allow in a document
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
DOCTYPES = [
    "",
    "<!DOCTYPE PubmedArticleSet>\n",
    '<!DOCTYPE PubmedArticleSet PUBLIC "-//NLM//DTD PubMedArticle, 1st January 2019//EN" '
    '"https://dtd.nlm.nih.gov/ncbi/pubmed/out/pubmed_190101.dtd">\n',
    f'<!DOCTYPE PubmedArticleSet [\n<!ENTITY sec "{SECRET}">\n<!ENTITY xxe SYSTEM "file:///etc/passwd">\n'
    '<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
    '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">\n]>\n',
]
ENTITY_REFS = ["&sec;", "&xxe;", "&d;"]  # declared only by the last DOCTYPE

Verdict = Literal["good", "bad", "any"]
Article = tuple[str, Verdict, str | None]  # markup, verdict, expected id
Decision = tuple[int, Accepted | Reject]
PushAndCheck = Callable[
    [bytes, str, FieldMapping, str | None], tuple[PushSummary | InputError, list[Decision]]
]


def xml_text(text: str) -> str:
    """``text`` as XML character data: characters XML does not allow become spaces, markup escaped."""
    return escape(_NOT_XML.sub(" ", text))


@st.composite
def _content(draw: st.DrawFn, text: str, entities: bool) -> str:
    """Character data for ``text``, in one of the ways XML allows."""
    how = draw(
        st.sampled_from(["plain", "plain", "cdata", "markup", "refs"] + (["entity"] if entities else []))
    )
    if how == "cdata":
        return "<![CDATA[" + _NOT_XML.sub(" ", text).replace("]]>", "]] >") + "]]>"
    if how == "markup":
        return f"<i>{xml_text(text)}</i> <sup>2</sup><b/>"
    if how == "refs":
        return "&#233;&#x1F600;&amp;&lt;&gt;&quot;&apos; " + xml_text(text)
    if how == "entity":
        return xml_text(text) + draw(st.sampled_from(ENTITY_REFS))
    return xml_text(text)


@st.composite
def _date(draw: st.DrawFn) -> str:
    if draw(st.booleans()):
        return f"<MedlineDate>{draw(st.sampled_from(['1978 Jan-Feb', '2020 Winter', '', 'x']))}</MedlineDate>"
    parts = [f"<Year>{draw(st.sampled_from(['2021', '1999', '', 'MMXX']))}</Year>"]
    parts += [draw(st.sampled_from(["", "<Month>Mar</Month>", "<Season>Winter</Season>", "<Day>4</Day>"]))]
    return "".join(parts)


def _label(label: str | None) -> str:
    return "" if label is None else " Label=" + quoteattr(_NOT_XML.sub(" ", label))


def _article(pmid: str | None, title: str | None, abstract: list[tuple[str | None, str]], extra: str) -> str:
    pmid_xml = "" if pmid is None else f'<PMID Version="1">{pmid}</PMID>'
    title_xml = "" if title is None else f"<ArticleTitle>{title}</ArticleTitle>"
    sections = "".join(f"<AbstractText{_label(label)}>{body}</AbstractText>" for label, body in abstract)
    abstract_xml = f"<Abstract>{sections}</Abstract>" if abstract else ""
    return (
        f'<PubmedArticle><MedlineCitation Status="MEDLINE" Owner="NLM">{pmid_xml}<Article PubModel="Print">'
        f"<Journal><Title>Journal of {xml_text(SECRET)}</Title><JournalIssue><PubDate>{extra}</PubDate>"
        f"</JournalIssue></Journal>{title_xml}{abstract_xml}"
        "<PublicationTypeList><PublicationType>Journal Article</PublicationType></PublicationTypeList>"
        "</Article><MeshHeadingList><MeshHeading>"
        f'<DescriptorName MajorTopicYN="Y">{xml_text(SECRET)}</DescriptorName>'
        "</MeshHeading></MeshHeadingList>"
        "</MedlineCitation><PubmedData/></PubmedArticle>"
    )


@st.composite
def good_article(
    draw: st.DrawFn, values: dict[str, SearchStrategy[Any]], number: int, entities: bool
) -> Article:
    pmid = str(90_000_000 + number)
    title = draw(_content(draw(values["good_text"]), entities=False))  # the secret in plain sight
    abstract = [
        (
            draw(st.sampled_from([None, "BACKGROUND", 'A "quoted" <label>'])),
            draw(_content(draw(values["good_text"]), entities)),
        )
        for _ in range(draw(st.integers(0, 3)))
    ]
    pmid_xml = draw(st.sampled_from([pmid, f"  {pmid}\n", f"<![CDATA[{pmid}]]>"]))
    return _article(pmid_xml, title, abstract, draw(_date())), "good", f"pubmed:{pmid}"


@st.composite
def bad_article(
    draw: st.DrawFn, values: dict[str, SearchStrategy[Any]], number: int, earlier: Sequence[Article]
) -> Article:
    pmid = str(90_000_000 + number)
    title: str | None = xml_text(draw(values["good_text"]))
    abstract: list[tuple[str | None, str]] = [("RESULTS", xml_text(draw(values["good_text"])))]
    goods = [markup for markup, verdict, _ in earlier if verdict == "good"]
    defect = draw(st.sampled_from(["no-pmid", "pmid", "no-text", "huge", *(["duplicate"] if goods else [])]))
    pmid_xml: str | None = pmid
    if defect == "no-pmid":
        pmid_xml = draw(st.sampled_from([None, "", "   ", "<![CDATA[ ]]>"]))
    elif defect == "pmid":
        pmid_xml = draw(st.sampled_from(["12 34", "-5", "x" * 201, "١٢٣", ".9", "9 9"]))
    elif defect == "no-text":
        title = draw(st.sampled_from([None, "", "  \n\t ", "<i> </i>", "<![CDATA[ ]]>"]))
        abstract = draw(st.sampled_from([[], [(None, " ")], [("LABEL", "")], [(None, "<b/>")]]))
    elif defect == "huge":
        abstract = [(None, "z" * MAX_TEXT_BYTES + xml_text(SECRET))]
    else:
        first = re.search(r"<PMID Version=\"1\">(.*?)</PMID>", draw(st.sampled_from(goods)), re.S)
        assert first is not None
        pmid_xml = first.group(1)
    return _article(pmid_xml, title, abstract, draw(_date())), "bad", None


@st.composite
def any_article(
    draw: st.DrawFn, values: dict[str, SearchStrategy[Any]], number: int, entities: bool
) -> Article:
    def part() -> str | None:
        if draw(st.integers(0, 3)) == 0:
            return None
        return draw(_content(draw(values["messy_text"]), entities))

    pmid = draw(st.one_of(st.none(), st.just(str(80_000_000 + number)), values["messy_plain"].map(xml_text)))
    abstract = [
        (draw(st.one_of(st.none(), values["messy_plain"])), part() or "")
        for _ in range(draw(st.integers(0, 2)))
    ]
    markup = _article(pmid, part(), abstract, draw(_date()))
    if draw(st.integers(0, 5)) == 0:  # something PubMed also writes, or does not
        markup = markup.replace(
            "</MedlineCitation>",
            draw(
                st.sampled_from(
                    [
                        "<CommentsCorrectionsList><CommentsCorrections><PMID>1</PMID></CommentsCorrections>"
                        "</CommentsCorrectionsList></MedlineCitation>",
                        "<OtherAbstract><AbstractText>other</AbstractText></OtherAbstract></MedlineCitation>",
                        "</MedlineCitation><MedlineCitation><PMID>2</PMID></MedlineCitation>",
                    ]
                )
            ),
        )
    return markup, "any", None


@st.composite
def pubmed_files(
    draw: st.DrawFn, values: dict[str, SearchStrategy[Any]], mutate: Callable[[bytes], SearchStrategy[bytes]]
) -> tuple[str, str, bytes, list[Article]]:
    mode = draw(st.sampled_from(["structured"] * 7 + ["mutated", "mutated", "garbage"]))
    name = draw(st.sampled_from(["articles.xml", "articles.xml.gz"]))
    if mode == "garbage":
        data = draw(values["garbage"])
        return mode, name, gzip.compress(data, mtime=0) if draw(st.booleans()) else data, []
    doctype = draw(st.sampled_from(DOCTYPES))
    entities = doctype == DOCTYPES[-1]
    articles: list[Article] = []
    for index in range(draw(st.integers(0, 5))):
        kind = draw(st.sampled_from(["good", "good", "bad", "bad", "any", "any"]))
        if kind == "good":
            articles.append(draw(good_article(values, index, entities)))
        elif kind == "bad":
            articles.append(draw(bad_article(values, index, articles)))
        else:
            articles.append(draw(any_article(values, index, entities)))
    between = st.sampled_from(["", "\n  ", "<!-- a comment -->", "<?pi target?>", "\n"])
    body = "".join(draw(between) + markup for markup, _, _ in articles) + draw(between)
    encoding = draw(st.sampled_from(["utf-8", "utf-8", "utf-16", "iso-8859-1", None]))
    declaration = "" if encoding is None else f'<?xml version="1.0" encoding="{encoding.upper()}"?>\n'
    document = f"{declaration}{doctype}<PubmedArticleSet>{body}</PubmedArticleSet>\n"
    data = document.encode(encoding or "utf-8", errors="xmlcharrefreplace")
    if encoding is None and draw(st.booleans()):
        data = b"\xef\xbb\xbf" + data
    if name.endswith(".gz") or draw(st.integers(0, 5)) == 0:
        data = gzip.compress(data, compresslevel=draw(st.integers(1, 9)), mtime=0)
    if mode == "mutated":
        return mode, name, draw(mutate(data)), []
    return mode, name, data, articles


@pytest.mark.fuzz
def test_fuzz_pubmed_xml(
    run_fuzz: Callable[[SearchStrategy[Any], Callable[[Any], None]], None],
    fuzz_values: dict[str, SearchStrategy[Any]],
    mutate: Callable[[bytes], SearchStrategy[bytes]],
    push_and_check: PushAndCheck,
    verdicts: Callable[[Sequence[tuple[Verdict, str | None]], Sequence[Accepted | Reject]], None],
) -> None:
    def one_file(case: tuple[str, str, bytes, list[Article]]) -> None:
        mode, name, data, articles = case
        outcome, decisions = push_and_check(data, name, MAPPING, None)
        results = [result for _, result in decisions]
        for result in results:
            if isinstance(result, Accepted):
                assert "root:" not in result.document.text, "an external entity was resolved"
        stops = [i for i, r in enumerate(results) if isinstance(r, Reject) and _is_read_error(r.reason)]
        assert stops in ([], [len(results) - 1]), "a read error that is not the one last decision"
        if mode != "structured":
            return
        if not articles:
            assert isinstance(outcome, InputError), "a file without articles was not refused"
            return
        assert isinstance(outcome, PushSummary), f"a well-formed file was refused: {outcome}"
        assert not stops, f"well-formed XML read as broken: {results[-1]}"
        assert [number for number, _ in decisions] == list(range(1, len(articles) + 1))
        verdicts([(verdict, expected) for _, verdict, expected in articles], results)

    run_fuzz(pubmed_files(fuzz_values, mutate), one_file)


def _is_read_error(reason: str) -> bool:
    return reason.startswith("XML not well-formed") or reason.startswith("compressed data unreadable")
