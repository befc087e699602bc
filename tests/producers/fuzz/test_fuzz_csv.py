"""Fuzzing CSV intake (hypothesis, >= 10,000 files) through ``push_files`` into the real Redis queue.

Generated: CSV files for the ``mtsamples``, ``nestor`` (id template with ``{_seq}``), ``jira_csv`` (a
second text column) and ``pubmed`` (literature with a title) presets, with a BOM or not, ``\\r\\n``,
``\\n`` or ``\\r`` line ends, padded or extra header columns and blank lines between records. Each record is
good (valid, unique id: must be accepted with that id), bad (one certain defect: empty or blank text,
undecodable bytes in the text, a metadata value or the title, text over the limit, a missing, malformed or
repeated id, too many or too few fields: must be rejected) or anything at all (any cell any string: empty,
control characters, NUL, undecodable bytes, huge). Besides: header defects (a mapped column missing or
repeated: the file is refused), the header line left out, byte-level accidents (truncation, cut spans,
inserted, flipped or invalid bytes), and raw garbage.

Asserted, besides ``push_and_check``'s generic properties (see the fuzz ``conftest.py``): a well-formed
file gives one decision per record, in order, accepted + rejected == records written; good records are
accepted with their ids, bad ones rejected; a header defect or a file without records is an InputError.
"""

from __future__ import annotations

import csv
import io
import re
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
MAX_TEXT_BYTES = 3_000  # the fuzz conftest's limit
FUZZ_EXAMPLES = 10_000
MAPPINGS = {name: load_preset(name) for name in ("mtsamples", "nestor", "jira_csv", "pubmed")}
LINE_ENDS = ("\r\n", "\n", "\r")
BAD_BYTE = "\udcff"  # written with surrogateescape: the byte 0xFF, never valid UTF-8
_NON_ESCAPABLE = re.compile("[\ud800-\udc7f\udd00-\udfff]")

# strategies built once (one built inside a composite is validated again on every draw)
GOOD_CELLS = st.sampled_from(
    [
        SECRET,
        f"Cardiology {SECRET}",
        f'{SECRET}, "quoted"\r\nnext line',
        f"é {SECRET} 😀",
        f"\x00{SECRET}\t",
        "",
    ]
)
LOCAL_IDS = st.sampled_from(["a", "B7", "q/1#2"])
KINDS = st.sampled_from(["good", "good", "bad", "bad", "any", "any"])
MODES = st.sampled_from(["structured"] * 6 + ["header-defect", "headerless", "mutated", "mutated", "garbage"])

Verdict = Literal["good", "bad", "any"]
Row = tuple[list[str | None], Verdict, str | None]  # cells, verdict, id
Mode = Literal["structured", "header-defect", "headerless", "mutated", "garbage"]
Decision = tuple[int, Accepted | Reject]
PushAndCheck = Callable[
    [bytes, str, FieldMapping, str | None], tuple[PushSummary | InputError, list[Decision]]
]


def _columns(mapping: FieldMapping) -> list[str]:
    return list(dict.fromkeys([*mapping.required_columns(), *mapping.more_text_fields]))


def _id_columns(mapping: FieldMapping) -> list[str]:
    return [mapping.id_field] if mapping.id_field else mapping.template_columns()


def _cell(value: str) -> str:
    """A generated string as a CSV cell: surrogates that surrogateescape cannot write become 0xFF."""
    return _NON_ESCAPABLE.sub(BAD_BYTE, value)


@st.composite
def _good_row(
    draw: st.DrawFn, mapping: FieldMapping, index: int, values: dict[str, SearchStrategy[Any]]
) -> Row:
    row = {name: draw(GOOD_CELLS) for name in _columns(mapping)}  # metadata, title: valid, with the secret
    row[mapping.text_field] = draw(values["good_text"]) + f" #{index}"
    for name in mapping.more_text_fields:
        row[name] = draw(st.sampled_from(("", draw(values["good_text"]))))
    if mapping.id_field:
        local = f"good-{index}.{draw(LOCAL_IDS)}"
        row[mapping.id_field] = draw(st.sampled_from([local, f" {local}  "]))
        expected = f"{mapping.source}:{local}"
    else:  # nestor: {Asset}-{BscStartDate}-{_seq}
        row["Asset"], row["BscStartDate"] = f"gA{index}", f"2004-07-{draw(st.integers(10, 28))}"
        expected = f"{mapping.source}:gA{index}-{row['BscStartDate']}-1"
    cells: list[str | None] = [row[name] for name in _columns(mapping)]
    return cells, "good", expected


@st.composite
def _bad_row(
    draw: st.DrawFn,
    mapping: FieldMapping,
    index: int,
    values: dict[str, SearchStrategy[Any]],
    earlier_good: Sequence[list[str | None]],
) -> Row:
    """One certain defect in an otherwise good row."""
    cells, _, _ = draw(_good_row(mapping, index, values))
    columns = _columns(mapping)
    row = dict(zip(columns, cells, strict=True))
    defects = ["text", "metadata", "id", "fields", *(["title"] if mapping.title_field else [])]
    defects += ["duplicate"] if earlier_good and mapping.id_field else []
    defect = draw(st.sampled_from(defects))
    if defect == "text":
        for name in mapping.more_text_fields:
            row[name] = ""
        row[mapping.text_field] = draw(
            st.sampled_from(
                ["", " ", "\t\r\n ", SECRET + BAD_BYTE, BAD_BYTE + SECRET, "z" * MAX_TEXT_BYTES + SECRET]
            )
        )
    elif defect == "metadata":
        name = draw(st.sampled_from(mapping.metadata_fields))
        row[name] = row[name] + BAD_BYTE if name in _id_columns(mapping) else SECRET + BAD_BYTE
    elif defect == "title":
        row[mapping.title_field or ""] = BAD_BYTE + SECRET
    elif defect == "id":
        ids = _id_columns(mapping)
        name = draw(st.sampled_from(ids))
        choices = ["", "   ", "a b", "x" * 201, "é", "\x00"] + (["-x", ".x"] if name == ids[0] else [])
        row[name] = draw(st.sampled_from(choices))
    elif defect == "duplicate":
        first = dict(zip(columns, draw(st.sampled_from(list(earlier_good))), strict=True))
        row[mapping.id_field or ""] = first[mapping.id_field or ""]
    bad_cells: list[str | None] = [row[name] for name in columns]
    if defect == "fields":  # one field too many ("extra") or too few (a trailing None)
        bad_cells.append(None if draw(st.booleans()) else "extra")
    return bad_cells, "bad", None


@st.composite
def _any_row(
    draw: st.DrawFn,
    mapping: FieldMapping,
    values: dict[str, SearchStrategy[Any]],
    earlier: Sequence[list[str | None]],
) -> Row:
    columns = _columns(mapping)
    cells: list[str | None] = []
    for position, name in enumerate(columns):
        if name in _id_columns(mapping) and earlier and draw(st.integers(0, 4)) == 0:
            cells.append(draw(st.sampled_from(list(earlier)))[position])
        else:
            cells.append(
                draw(values["messy_plain"] if name in _id_columns(mapping) else values["messy_text"])
            )
    return cells, "any", None


@st.composite
def csv_cases(
    draw: st.DrawFn, values: dict[str, SearchStrategy[Any]], mutate: Callable[[bytes], SearchStrategy[bytes]]
) -> tuple[Mode, FieldMapping, bytes, list[Row]]:
    name = draw(st.sampled_from(list(MAPPINGS)))
    mapping = MAPPINGS[name]
    mode: Mode = draw(MODES)
    if mode == "garbage":
        return mode, mapping, draw(values["garbage"]), []
    rows: list[Row] = []
    for index in range(draw(st.integers(0, 6))):
        goods = [cells for cells, verdict, _ in rows if verdict == "good"]
        kind = draw(KINDS)
        if kind == "good":
            rows.append(draw(_good_row(mapping, index, values)))
        elif kind == "bad":
            rows.append(draw(_bad_row(mapping, index, values, goods)))
        else:
            rows.append(draw(_any_row(mapping, values, [cells for cells, _, _ in rows])))
    header = _columns(mapping)
    extra = draw(st.lists(st.sampled_from(["extra", "Notes 2", "", "x_y"]), max_size=2))
    order = draw(st.permutations(range(len(header) + len(extra))))
    header_cells = [draw(st.sampled_from([n, f" {n} ", f"{n}\t"])) for n in header] + extra
    if mode == "header-defect":
        target = draw(st.sampled_from(mapping.required_columns()))
        position = header.index(target)
        if draw(st.booleans()):  # a mapped column repeated
            header_cells.append(target)
            order = [*order, len(header_cells) - 1]
        else:  # a mapped column missing
            header_cells[position] = "renamed-away"
    line_end = draw(st.sampled_from(LINE_ENDS))
    quoting = csv.QUOTE_MINIMAL if line_end == "\r\n" and draw(st.booleans()) else csv.QUOTE_ALL
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator=line_end, quoting=quoting)

    def arranged(cells: list[str | None]) -> list[str]:
        """The row in the header's order (extra columns filled); a marked row one field off."""
        mark = cells[len(header)] if len(cells) > len(header) else "ok"
        full = [c or "" for c in cells[: len(header)]]
        full += ["x"] * (len(header_cells) - len(full))
        out = [_cell(full[i]) for i in order]
        if mark is None:
            return out[:-1]
        return out if mark == "ok" else [*out, mark]

    if mode != "headerless":
        writer.writerow([header_cells[i] for i in order])
    for cells, _, _ in rows:
        if draw(st.integers(0, 5)) == 0:
            buffer.write(line_end)  # a blank line: not a record
        writer.writerow(arranged(cells))
    data = (draw(st.sampled_from(["", "\ufeff"])) + buffer.getvalue()).encode("utf-8", "surrogateescape")
    if mode == "mutated":
        data = draw(mutate(data))
    return mode, mapping, data, rows


@pytest.mark.fuzz
def test_fuzz_csv(
    run_fuzz: Callable[[SearchStrategy[Any], Callable[[Any], None]], None],
    fuzz_values: dict[str, SearchStrategy[Any]],
    mutate: Callable[[bytes], SearchStrategy[bytes]],
    push_and_check: PushAndCheck,
    verdicts: Callable[[Sequence[tuple[Verdict, str | None]], Sequence[Accepted | Reject]], None],
) -> None:
    def one_file(case: tuple[Mode, FieldMapping, bytes, list[Row]]) -> None:
        mode, mapping, data, rows = case
        outcome, decisions = push_and_check(data, "records.csv", mapping, None)
        if mode == "header-defect":
            assert isinstance(outcome, InputError), "a mapped column missing or repeated was not refused"
        elif mode == "structured":
            if not rows:
                assert isinstance(outcome, InputError), "a file without records was not refused"
                return
            assert isinstance(outcome, PushSummary), f"a well-formed file was refused: {outcome}"
            assert outcome.accepted + outcome.rejected == len(rows)
            verdicts(
                [(verdict, expected) for _, verdict, expected in rows], [result for _, result in decisions]
            )

    run_fuzz(csv_cases(fuzz_values, mutate), one_file)
