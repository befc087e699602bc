from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.endtoend import serving
from nightclerk.cli.worker_process import WorkerProcess
from nightclerk.shared.settings import Settings


def test_serving_names_the_kinds_of_that_pack_and_no_summarizer() -> None:
    settings = Settings(classify_packs={"repair_ticket": "ticket-system", "ehr_note": "ehr-specialty"})
    overrides = serving(settings, "ticket-system")
    assert overrides == {"classify_packs": {"repair_ticket": "ticket-system"}, "summarize_packs": {}}


def test_serving_a_pack_no_kind_uses_stops_the_benchmark() -> None:
    with pytest.raises(SystemExit, match="no-such-pack"):
        serving(Settings(), "no-such-pack")


def test_a_worker_with_those_settings_loads_that_pack_alone(
    tmp_path: Path, tiny_packs: Path, redis_url: str, queue_name: str
) -> None:
    overrides = {
        "redis_url": redis_url,
        "queue": queue_name,
        "packs_dir": str(tiny_packs),
        "data_dir": str(tmp_path),
        "log_json": "true",
        **serving(Settings(), "ticket-system"),
    }
    worker = WorkerProcess(overrides, tmp_path / "worker.log", ready_timeout=120, inherit=False).start()
    try:
        lines = worker.log_path.read_text().splitlines()
    finally:
        worker.stop()
    events = [json.loads(line) for line in lines if line.startswith("{")]
    assert [e["pack"] for e in events if e["event"] == "pack_loaded"] == ["ticket-system"]
    assert [e["serves"] for e in events if e["event"] == "worker_ready"] == [["classify:repair_ticket"]]
