"""File-level checks, made before any record of a file is used: empty file, mapped columns missing."""

from __future__ import annotations

from pathlib import Path

from nightclerk.producers.mapping import FieldMapping
from nightclerk.producers.readers import SAMPLE_RECORDS, FileShape
from nightclerk.shared.errors import InputError


def _names(names: list[str], limit: int = 40) -> str:
    # undecodable bytes (lone surrogates) shown as \udcXX escapes, so the message can always be printed
    shown = [name.encode("utf-8", "backslashreplace").decode("utf-8") for name in names]
    more = f", ... ({len(names) - limit} more)" if len(names) > limit else ""
    return ", ".join(shown[:limit]) + more


def check_columns(path: Path, shape: FileShape, mapping: FieldMapping) -> None:
    """Raise :class:`InputError` when the file is empty or lacks a column the mapping reads."""
    if not shape.has_records:
        what = "has a header but no records" if shape.columns else "is empty"
        raise InputError(f"{path} {what}")
    columns = set(shape.columns)
    if shape.header:
        repeated = [name for name in mapping.required_columns() if shape.columns.count(name) > 1]
        if repeated:
            raise InputError(f"{path}: column(s) {_names(repeated)} appear more than once in the header")
    elif not columns:
        return  # no record of the sample parsed: each line is rejected on its own
    # a dotted path into nested JSON (fields.summary) is there when its first key is
    missing = [
        name
        for name in mapping.required_columns()
        if name not in columns and (shape.header or name.split(".", 1)[0] not in columns)
    ]
    if missing:
        found = (
            _header_summary(shape.columns, mapping.required_columns(), missing)
            if shape.header
            else f"keys found in the first {SAMPLE_RECORDS} records: {_names(shape.columns)}"
        )
        raise InputError(f"{path}: missing column(s) {_names(missing)} named by the mapping; {found}")


def _header_summary(header: list[str], required: list[str], missing: list[str]) -> str:
    """What the header line holds, without quoting cells the mapping does not name: in a file without a
    header line (or one cut into the first record) that line is a record, and its cells are document text.
    A cell is shown only when it is a mapped name, or looks like a missing one (case, spaces, ``_``, ``-``).
    """
    named = [name for name in dict.fromkeys(header) if name in required]
    norms: dict[str, str] = {}
    for cell in header:
        norms.setdefault(_normalized(cell), cell)
    similar = [f"{norms[_normalized(name)]} for {name}" for name in missing if _normalized(name) in norms]
    text = f"the header line has {len(header)} column(s), named by the mapping: {_names(named) or 'none'}"
    if similar:
        text += f"; did you mean {_names(similar)}?"
    return text + " (other cells are not shown: in a file without a header line, that line is a record)"


def _normalized(name: str) -> str:
    return "".join(char for char in name.casefold() if char not in " _-\t")
