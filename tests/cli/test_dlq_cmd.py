"""``nightclerk dlq``: list and show without text, show --text on purpose, requeue to the real queue."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from typer.testing import CliRunner

from nightclerk.cli.main import app
from nightclerk.shared.documents import EhrNote, RepairTicket
from nightclerk.shared.messages import ChunkMessage
from nightclerk.shared.settings import Settings, get_settings
from nightclerk.shared.signing import verify
from nightclerk.shared.store import DeadLetterStore, Failure, ResultStore

SECRET = "PHI-SECRET-7f3a"
Decoder = Callable[[bytes | str], tuple[dict[str, Any], list[Any]]]


@pytest.fixture
def letters(
    tmp_path: Path, redis_url: str, queue_name: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[DeadLetterStore]:
    for key, value in {
        "NIGHTCLERK_REDIS_URL": redis_url, "NIGHTCLERK_QUEUE": queue_name,
        "NIGHTCLERK_DATA_DIR": str(tmp_path), "NIGHTCLERK_CHUNK_DOCS": "2",
        "NIGHTCLERK_MESSAGE_SIGNING_KEY": "dlq-test-key",
    }.items():  # fmt: skip
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("NIGHTCLERK_DATABASE_URL", raising=False)
    get_settings.cache_clear()
    store = ResultStore(f"sqlite:///{tmp_path / 'results.db'}")
    dead = DeadLetterStore(store)
    notes = [EhrNote(source="epic", source_id=f"n{i}", text=f"note {i} {SECRET}") for i in range(3)]
    ticket = RepairTicket(source="cmms", source_id="t1", text=f"pump {SECRET}")
    dead.record(
        [
            Failure(d, "classify", "ehr-specialty", "v1", "InferenceError: pack ehr-specialty: boom", 3)
            for d in notes
        ]
        + [Failure(ticket, "summarize", "summarizer", "v2", "worker error: TypeError at x.py:3", 1)],
        chunk_id="c1",
        worker_id="w1",
    )
    yield dead
    store.close()
    get_settings.cache_clear()


def _run(*args: str) -> Any:
    return CliRunner().invoke(app, ["dlq", *args], env={"COLUMNS": "250"})


def test_list_and_show_give_reasons_and_never_text(letters: DeadLetterStore) -> None:
    listed = _run("list")
    assert listed.exit_code == 0, listed.output
    assert "dead letters (4)" in listed.output and "epic:n2" in listed.output and "cmms:t1" in listed.output
    assert "InferenceError: pack ehr-specialty: boom" in listed.output and SECRET not in listed.output
    jsonl = _run("list", "--format", "jsonl", "--task", "summarize")
    assert jsonl.exit_code == 0 and jsonl.output.count("\n") == 1 and '"cmms:t1"' in jsonl.output
    shown = _run("show", "epic:n1")
    assert shown.exit_code == 0 and "attempts: 3" in shown.output and "text_chars: 22" in shown.output
    assert SECRET not in shown.output
    with_text = _run("show", "epic:n1", "--text")
    assert with_text.exit_code == 0 and f"note 1 {SECRET}" in with_text.output  # asked for, on purpose
    assert _run("show", "epic:nope").exit_code == 1


def test_requeue_sends_signed_chunks_and_deletes_what_it_sent(
    letters: DeadLetterStore, redis_url: str, queue_name: str, decode_message: Decoder
) -> None:
    assert _run("requeue").exit_code == 2  # neither ids nor --all
    one = _run("requeue", "epic:n0")
    assert one.exit_code == 0 and "requeued 1 of 1" in one.output
    rest = _run("requeue", "--all", "--kind", "ehr_note")
    assert rest.exit_code == 0 and "requeued 2 of 2" in rest.output
    assert [d.document_id for d in letters.letters()] == ["cmms:t1"]  # the ticket was not asked for
    client = redis.Redis.from_url(redis_url)
    raws = list(reversed(client.lrange(queue_name, 0, -1)))
    client.close()
    key = Settings(message_signing_key="dlq-test-key").message_signing_key
    assert key is not None
    chunks = []
    for raw in raws:
        _, (args, kwargs, _) = decode_message(raw)
        verify(key, args[0], kwargs["signature"])
        chunks.append(ChunkMessage.model_validate(args[0]))
    assert [[d.id for d in c.documents] for c in chunks] == [["epic:n0"], ["epic:n1", "epic:n2"]]
    assert all(c.tasks == ["classify"] for c in chunks)
    assert chunks[1].documents[1].text == f"note 2 {SECRET}"  # the document as it was pushed


def test_requeue_without_redis_keeps_the_letters(
    letters: DeadLetterStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NIGHTCLERK_REDIS_URL", "redis://127.0.0.1:1/0")
    get_settings.cache_clear()
    result = _run("requeue", "--all")
    assert result.exit_code == 2 and "no Redis answers" in result.output
    assert len(letters.letters()) == 4
