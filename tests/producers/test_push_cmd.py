from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import structlog
import typer
from typer.testing import CliRunner, Result

from nightclerk.cli import push_cmd
from nightclerk.shared.messages import ChunkMessage
from nightclerk.shared.settings import Settings, get_settings

SECRET = "PHI-SECRET-7f3a"
ERROR_PREFIX = "nightclerk push: error: "
Queue = Callable[[], list[ChunkMessage]]


@pytest.fixture
def cli() -> Iterator[typer.Typer]:
    """``push`` on an app of its own, as cli/main.py registers it (the other commands are not needed)."""
    app = typer.Typer()
    app.callback()(lambda: None)
    app.command("push")(push_cmd.push)
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield app
    # the command points logging at the runner's stderr, which closes after the test
    root.handlers[:], root.level = handlers, level
    structlog.reset_defaults()
    get_settings.cache_clear()


@pytest.fixture
def env(producer_settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Settings:
    monkeypatch.setenv("NIGHTCLERK_REDIS_URL", producer_settings.redis_url)
    monkeypatch.setenv("NIGHTCLERK_QUEUE", producer_settings.queue)
    monkeypatch.chdir(tmp_path)
    get_settings.cache_clear()
    return producer_settings


def _run(app: typer.Typer, *args: str | Path) -> Result:
    result = CliRunner().invoke(app, ["push", *map(str, args)])
    assert SECRET not in result.stdout and SECRET not in result.stderr
    return result


def _error_line(result: Result) -> str:
    errors = [line for line in result.stderr.splitlines() if line.startswith(ERROR_PREFIX)]
    assert len(errors) == 1, result.stderr
    assert result.stderr.rstrip("\n").endswith(errors[0])
    return errors[0].removeprefix(ERROR_PREFIX)


def _notes(write_csv: Callable[..., Path], texts: list[str], name: str = "notes.csv") -> Path:
    return write_csv(name, ["id", "text", "ward"], [[str(i), text, "3B"] for i, text in enumerate(texts)])


def test_all_accepted_exits_0_with_the_summary_line(
    cli: typer.Typer, env: Settings, nestor_csv: Path, queued: Queue
) -> None:
    result = _run(cli, nestor_csv, "--mapping", "nestor", "--chunk-size", "4", "--no-progress")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == f"accepted 6, rejected 0, 2 chunks to queue {env.queue}\n"
    assert [len(chunk.documents) for chunk in queued()] == [4, 2]
    assert list(Path(".").glob("rejects-*")) == []


def test_some_rejected_exits_3_and_names_the_rejects_file(
    cli: typer.Typer, env: Settings, write_csv: Callable[..., Path], queued: Queue
) -> None:
    path = _notes(write_csv, ["one", "two", "x" * 600_000 + SECRET])
    result = _run(
        cli,
        path,
        "--kind",
        "ehr_note",
        "--source",
        "clinic",
        "--id-column",
        "id",
        "--text-column",
        "text",
        "--metadata",
        "ward",
        "--rejects",
        "bad.jsonl",
    )
    assert result.exit_code == 3, result.stderr
    assert result.stdout == f"accepted 2, rejected 1 (see bad.jsonl), 1 chunk to queue {env.queue}\n"
    assert '"reason": "text is 600015 bytes, limit 500000"' in Path("bad.jsonl").read_text()
    [chunk] = queued()
    assert [doc.id for doc in chunk.documents] == ["clinic:0", "clinic:1"]
    assert chunk.documents[0].metadata == {"ward": "3B"}


def test_nothing_accepted_exits_2(cli: typer.Typer, env: Settings, tmp_path: Path, queued: Queue) -> None:
    path = tmp_path / "broken.jsonl"
    path.write_text(f'{{"id": "1", "text": "{SECRET}\n{{"id": "2"\n')
    result = _run(cli, path, "--kind", "literature", "--source", "pubmed", "--text-column", "text")
    assert result.exit_code == 2
    assert result.stdout.startswith("accepted 0, rejected 2 (see rejects-")
    assert _error_line(result) == "nothing accepted: all 2 records were rejected"
    assert queued() == []


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--mapping", "mtsamples"], "missing column(s) transcription, note_id, specialty, sample_name"),
        (["--mapping", "nope"], "unknown mapping preset 'nope'; presets: fhir, "),
        (["--mapping", "missing.toml"], "mapping file missing.toml does not exist"),
        (
            ["--source", "clinic"],
            "give --mapping (a preset or a TOML file), or --kind or --kind-column, --text-column",
        ),
        (
            ["--kind", "memo", "--source", "s", "--text-column", "text"],
            "mapping from the command-line options is invalid: kind: Input should be",
        ),
        (
            ["--mapping", "nestor", "--tasks", "classify,translate"],
            "unknown task(s) translate; tasks: classify, summarize",
        ),
        (["--mapping", "nestor", "--format", "xml"], "unknown format 'xml'; formats: csv, jsonl"),
    ],
)
def test_input_errors_exit_2_with_one_line(
    cli: typer.Typer,
    env: Settings,
    write_csv: Callable[..., Path],
    queued: Queue,
    args: list[str],
    error: str,
) -> None:
    path = _notes(write_csv, [SECRET])
    result = _run(cli, path, *args)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert _error_line(result).replace(f"{path}: ", "").startswith(error)
    assert queued() == []


def test_an_empty_file_exits_2(cli: typer.Typer, env: Settings, tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_text("")
    result = _run(cli, path, "--mapping", "mtsamples")
    assert result.exit_code == 2
    assert _error_line(result) == f"{path} is empty"


def test_no_broker_exits_2_with_a_hint(
    cli: typer.Typer, write_csv: Callable[..., Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("NIGHTCLERK_REDIS_URL", "redis://127.0.0.1:1/0")
    monkeypatch.chdir(tmp_path)
    get_settings.cache_clear()
    path = _notes(write_csv, [SECRET])
    result = _run(cli, path, "--kind", "ehr_note", "--source", "clinic", "--text-column", "text")
    assert result.exit_code == 2
    hint = "no Redis answers at redis://127.0.0.1:1/0 (ConnectionError); start one with"
    assert _error_line(result).startswith(hint)
