from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from nightclerk.shared.manifest import Variant, verify_pack
from nightclerk.workers.variant_choice import PROBE_DOCS, TIMED_RUNS, fastest, probe_feeds


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class CostlySession:
    """Each run advances the clock by its cost; the first run (the warm-up) by ``first``."""

    def __init__(self, clock: Clock, cost: float, first: float) -> None:
        self.clock, self.cost, self.first, self.runs = clock, cost, first, 0

    def run(self, outputs: list[str], feeds: dict[str, np.ndarray]) -> list[Any]:
        self.clock.now += self.first if self.runs == 0 else self.cost
        self.runs += 1
        return []


def _variant(precision: str) -> Variant:
    return Variant(precision=precision, file=f"model.{precision}.onnx", batch_independent=True)


def test_the_fastest_timed_run_wins_and_the_warm_up_is_off_the_clock() -> None:
    clock = Clock()
    costs = {"int8": (0.30, 0.01), "fp32": (0.20, 9.0)}  # fp32 is slower to warm up, faster after
    sessions = {p: CostlySession(clock, cost, first) for p, (cost, first) in costs.items()}
    choice = fastest(
        [_variant("int8"), _variant("fp32")], lambda v: sessions[v.precision], "logits", {}, clock
    )
    assert choice.variant.precision == "fp32" and choice.session is sessions["fp32"]
    assert choice.seconds == pytest.approx({"int8": 0.30, "fp32": 0.20})
    assert all(s.runs == 1 + TIMED_RUNS for s in sessions.values())


def test_no_candidates_is_an_error() -> None:
    with pytest.raises(ValueError):
        fastest([], lambda v: None, "logits", {})


def test_probe_feeds_are_long_attended_wordpieces(tiny_packs: Path) -> None:
    manifest = verify_pack(tiny_packs / "ehr-specialty", task="classify")
    feeds = probe_feeds(manifest, 64)
    assert feeds["input_ids"].shape == feeds["attention_mask"].shape == (PROBE_DOCS, 64)
    assert feeds["attention_mask"].all()
    assert feeds["input_ids"].min() >= 1000 and feeds["input_ids"].max() < 2000  # wordpieces every BERT has
    np.testing.assert_array_equal(feeds["input_ids"], probe_feeds(manifest, 64)["input_ids"])
