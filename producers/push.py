"""``nightclerk push``: files -> validated documents -> chunks on the queue, rejects to a JSONL file.

Every file is checked (format, non-empty, mapped columns present) and the broker pinged before the first
chunk is sent, so a file-level problem never leaves part of a push on the queue.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from nightclerk.producers.chunking import Chunker
from nightclerk.producers.enqueue import Enqueuer
from nightclerk.producers.filecheck import check_columns
from nightclerk.producers.mapping import FieldMapping
from nightclerk.producers.readers import Format, RecordReader, detect_format, inspect_file
from nightclerk.producers.rejects import RejectLog, default_rejects_path
from nightclerk.producers.validation import Accepted, Validator
from nightclerk.shared.errors import BrokerUnavailable, ConfigError
from nightclerk.shared.logging import get_logger
from nightclerk.shared.messages import TASKS, ChunkMessage
from nightclerk.shared.settings import Settings

PROGRESS_MIN_BYTES = 4 << 20  # a bar only for files that take a moment
_PROGRESS_EVERY = 256  # records between bar updates

log = get_logger("nightclerk.producers.push")


@dataclass
class FileSummary:
    path: str
    accepted: int = 0
    rejected: int = 0


@dataclass
class PushSummary:
    queue: str
    accepted: int = 0
    rejected: int = 0
    chunks: int = 0
    rejects_path: Path | None = None
    files: list[FileSummary] = field(default_factory=list)


def parse_tasks(value: str | Sequence[str]) -> list[str]:
    """``"classify,summarize"`` or a list -> the task names; :class:`ConfigError` for an unknown one."""
    names = value.split(",") if isinstance(value, str) else list(value)
    tasks = list(dict.fromkeys(name.strip() for name in names if name.strip()))
    unknown = [name for name in tasks if name not in TASKS]
    if unknown or not tasks:
        what = f"unknown task(s) {', '.join(unknown)}" if unknown else "no task given"
        raise ConfigError(f"{what}; tasks: {', '.join(TASKS)}")
    return tasks


@contextmanager
def _progress_bar(enabled: bool) -> Iterator[Progress | None]:
    console = Console(stderr=True)
    if not enabled or not console.is_terminal:
        yield None
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=True) as progress:
        yield progress


def push_files(
    paths: Sequence[Path],
    mapping: FieldMapping,
    tasks: Sequence[str],
    settings: Settings,
    rejects_path: Path | None = None,
    progress: bool = True,
    *,
    fmt: str | None = None,
    enqueuer: Enqueuer | None = None,
) -> PushSummary:
    """Validate and enqueue the records of ``paths``; rejects go to ``rejects_path`` (JSONL).

    InputError, ConfigError and BrokerUnavailable are raised before the first chunk is sent; only a broker
    that goes away mid-push raises later (BrokerUnavailable, saying how many chunks had left).
    """
    task_names = parse_tasks(tasks)
    formats: list[Format] = []
    for path in paths:  # every file is checked before the first chunk leaves
        file_format = detect_format(path, fmt)
        check_columns(path, inspect_file(path, file_format), mapping)
        formats.append(file_format)
    chunker = Chunker.from_settings(task_names, settings)
    validator = Validator(
        mapping, max_text_bytes=settings.max_text_bytes, max_json_bytes=chunker.max_document_bytes
    )
    summary = PushSummary(queue=settings.queue)
    sender = enqueuer if enqueuer is not None else Enqueuer(settings)
    try:
        sender.check()
        rejects = RejectLog(rejects_path or default_rejects_path(), always=rejects_path is not None)
        try:
            files = list(zip(paths, formats, strict=True))
            _push(files, validator, chunker, sender, rejects, summary, progress)
        finally:
            rejects.close()
    except BrokerUnavailable as exc:
        if summary.chunks:
            raise BrokerUnavailable(
                f"{exc}; {summary.chunks} chunks were already enqueued -- pushing the same files again is "
                "safe: document ids are stable and the result store keeps one row per document"
            ) from None
        raise
    finally:
        if enqueuer is None:
            sender.close()
    summary.rejects_path = rejects.path if rejects.count or rejects_path is not None else None
    log.info(
        "push.done",
        queue=summary.queue,
        accepted=summary.accepted,
        rejected=summary.rejected,
        chunks=summary.chunks,
        rejects_file=str(summary.rejects_path) if summary.rejects_path else None,
    )
    return summary


def _push(
    files: list[tuple[Path, Format]],
    validator: Validator,
    chunker: Chunker,
    sender: Enqueuer,
    rejects: RejectLog,
    summary: PushSummary,
    progress: bool,
) -> None:
    def send(chunks: list[ChunkMessage]) -> None:
        for chunk in chunks:
            sender.send(chunk)
            summary.chunks += 1

    with _progress_bar(progress) as bar:
        for path, file_format in files:
            counts = FileSummary(str(path))
            summary.files.append(counts)
            validator.start_file()
            with RecordReader(path, file_format) as reader:
                shown = bar is not None and reader.size >= PROGRESS_MIN_BYTES
                bar_task = bar.add_task(path.name, total=reader.size) if bar is not None and shown else None
                for number, (line, record) in enumerate(reader, start=1):
                    result = validator.validate(str(path), line, record)
                    if isinstance(result, Accepted):
                        counts.accepted += 1
                        send(chunker.add(result.document, result.json_bytes))
                    else:
                        counts.rejected += 1
                        rejects.write(result)
                    if bar is not None and bar_task is not None and number % _PROGRESS_EVERY == 0:
                        bar.update(bar_task, completed=reader.bytes_read)
                if bar is not None and bar_task is not None:
                    bar.update(bar_task, completed=reader.size)
            summary.accepted += counts.accepted
            summary.rejected += counts.rejected
            log.info("push.file", file=str(path), accepted=counts.accepted, rejected=counts.rejected)
        send(chunker.flush())
