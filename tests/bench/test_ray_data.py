from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from bench.ray_data import Classify, batch_span_seconds


def test_span_runs_from_the_first_batch_start_to_the_last_batch_end() -> None:
    table = pa.table(
        {
            "batch_started": [10.0, 10.0, 12.5, 11.0],
            "batch_ended": [11.0, 11.0, 14.0, 13.0],
        }
    )
    assert batch_span_seconds(table) == pytest.approx(4.0)


def test_span_of_an_empty_output_is_an_error() -> None:
    table = pa.table({"batch_started": pa.array([], pa.float64()), "batch_ended": pa.array([], pa.float64())})
    with pytest.raises(ValueError, match="no batches"):
        batch_span_seconds(table)


def test_every_output_row_carries_its_batch_clock(tiny_packs: Path) -> None:
    actor = Classify(str(tiny_packs / "ticket-system"), threads=1, token_budget=512, max_batch_docs=8)
    out = actor({"id": np.array(["a", "b", "c"]), "text": np.array(["pump leak", "motor noise", "belt"])})
    assert len(out["batch_started"]) == len(out["batch_ended"]) == 3
    assert (out["batch_ended"] >= out["batch_started"]).all()
    assert batch_span_seconds(pa.table({k: out[k] for k in ("batch_started", "batch_ended")})) >= 0.0
