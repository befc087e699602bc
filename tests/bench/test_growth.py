from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.growth import _quarters, ready_at


def test_quarters_from_feed_stamps() -> None:
    # 100 docs: 25 each in 1 s, 1 s, 2 s and 5 s after the worker was ready
    progress = [(1.0, 25), (2.0, 50), (4.0, 75), (9.0, 100)]
    assert _quarters(progress, 100) == pytest.approx([25.0, 25.0, 12.5, 5.0])


def test_quarters_inside_chunks_grow_evenly() -> None:
    # two chunks of 500, announced document by document 2 s and 4 s after ready: 250 docs/s throughout
    first = [(2.0 + i * 1e-5, i + 1) for i in range(500)]
    second = [(4.0 + i * 1e-5, 501 + i) for i in range(500)]
    assert _quarters(first + second, 1000) == pytest.approx([250.0] * 4, rel=1e-2)


def test_ready_at_reads_the_stamp_of_the_ready_line(tmp_path: Path) -> None:
    log = tmp_path / "worker.log"
    lines = [
        "not json",
        json.dumps({"event": "loading", "timestamp": "2026-12-06T20:00:00.000000Z"}),
        json.dumps({"event": "celery@host ready.", "timestamp": "2026-12-06T20:00:01.500000Z"}),
    ]
    log.write_text("\n".join(lines) + "\n")
    assert ready_at(log) == pytest.approx(1796587201.5)
