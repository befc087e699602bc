"""The worker process refuses to start on a tampered pack and says which file."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from nightclerk.cli.worker_process import WorkerProcess
from nightclerk.shared.errors import NightclerkError


def test_worker_refuses_a_tampered_pack(
    tiny_packs: Path, tmp_path: Path, redis_url: str, queue_name: str
) -> None:
    packs = tmp_path / "packs"
    shutil.copytree(tiny_packs, packs)
    tokenizer = packs / "ticket-system" / "tokenizer.json"
    tokenizer.write_text(tokenizer.read_text().replace('"[UNK]"', '"[UNK2]"', 1))
    settings = {
        "redis_url": redis_url,
        "queue": queue_name,
        "packs_dir": str(packs),
        "data_dir": str(tmp_path),
    }
    worker = WorkerProcess(settings, tmp_path / "worker.log", ready_timeout=60, inherit=False)
    with pytest.raises(NightclerkError, match="exited with status 2"):
        worker.start()
    log = (tmp_path / "worker.log").read_text()
    assert "ticket-system: tokenizer.json has sha256" in log
    assert " ready." not in log
