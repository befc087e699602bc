from __future__ import annotations

import pytest

from bench.growth import _quarters


def test_quarters_from_store_counts() -> None:
    # 100 docs after 10 already stored: 25 docs each at 1 s, 1 s, 2 s and 5 s
    progress = [(0.0, 10), (1.0, 35), (2.0, 60), (4.0, 85), (9.0, 110)]
    assert _quarters(progress, 10, 100) == pytest.approx([25.0, 25.0, 12.5, 5.0])
