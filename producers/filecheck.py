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
        found = "columns found" if shape.header else f"keys found in the first {SAMPLE_RECORDS} records"
        raise InputError(
            f"{path}: missing column(s) {_names(missing)} named by the mapping; "
            f"{found}: {_names(shape.columns)}"
        )
