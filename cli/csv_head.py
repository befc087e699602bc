"""Copy the header and first rows of a CSV file: the demo, the benchmark and the tests push slices."""

from __future__ import annotations

import csv
import itertools
from pathlib import Path


def csv_head(source: Path, target: Path, rows: int) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    with (
        source.open(newline="", encoding="utf-8") as src,
        target.open("w", newline="", encoding="utf-8") as dst,
    ):
        writer = csv.writer(dst)
        for record in itertools.islice(csv.reader(src), rows + 1):
            writer.writerow(record)
    return target
