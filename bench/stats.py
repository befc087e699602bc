"""Repetitions of one measurement: median and min-max, as every table prints them."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Spread:
    values: list[float] = field(default_factory=list)

    def add(self, value: float) -> None:
        self.values.append(value)

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    def cell(self, digits: int = 1, dash: str = "-") -> str:
        """``72.0 (67.0-72.8)``; one value alone; ``—`` when nothing was measured."""
        if not self.values:
            return "—"
        if len(self.values) == 1:
            return f"{self.values[0]:.{digits}f}"
        low, high = min(self.values), max(self.values)
        return f"{self.median:.{digits}f} ({low:.{digits}f}{dash}{high:.{digits}f})"

    def as_dict(self) -> dict[str, Any]:
        if not self.values:
            return {"values": []}
        return {
            "median": self.median,
            "min": min(self.values),
            "max": max(self.values),
            "values": self.values,
        }
