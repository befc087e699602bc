"""`nightclerk push FILE...`: validate records and enqueue them in chunks.

Exit status: 0 every record accepted; 3 some rejected (see the rejects file); 2 nothing accepted, or the push
could not start (bad input file, bad options, no broker) -- each with one line on stderr.
"""

from __future__ import annotations

from pathlib import Path

import typer
from pydantic import ValidationError

from nightclerk.producers.mapping import FieldMapping, build_mapping, resolve_mapping
from nightclerk.producers.push import PushSummary, parse_tasks, push_files
from nightclerk.producers.readers import FORMATS
from nightclerk.shared.errors import ConfigError, NightclerkError
from nightclerk.shared.logging import configure_logging
from nightclerk.shared.settings import get_settings

EXIT_OK = 0
EXIT_FAILED = 2
EXIT_SOME_REJECTED = 3


def _fail(message: str) -> typer.Exit:
    typer.echo(f"nightclerk push: error: {message}", err=True)
    return typer.Exit(code=EXIT_FAILED)


def _mapping(
    mapping: str | None,
    *,
    kind: str | None,
    kind_column: str | None,
    source: str | None,
    id_column: str | None,
    id_template: str | None,
    text_column: str | None,
    title_column: str | None,
    metadata: list[str] | None,
) -> FieldMapping:
    overrides = {
        "kind": kind,
        "kind_field": kind_column,
        "source": source,
        "id_field": id_column,
        "id_template": id_template,
        "text_field": text_column,
        "title_field": title_column,
        "metadata_fields": metadata or None,
    }
    if mapping is not None:
        return resolve_mapping(mapping).with_overrides(**overrides)
    needed = (
        ("--kind or --kind-column", kind or kind_column),
        ("--source", source),
        ("--text-column", text_column),
    )
    missing = [name for name, value in needed if not value]
    if missing:
        raise ConfigError(f"give --mapping (a preset or a TOML file), or {', '.join(missing)}")
    given = {key: value for key, value in overrides.items() if value is not None}
    return build_mapping(given, origin="the command-line options")


def _summary_line(summary: PushSummary) -> str:
    line = f"accepted {summary.accepted}, rejected {summary.rejected}"
    if summary.rejected and summary.rejects_path is not None:
        line += f" (see {summary.rejects_path})"
    return line + f", {summary.chunks} chunk{'' if summary.chunks == 1 else 's'} to queue {summary.queue}"


def push(
    files: list[Path] = typer.Argument(..., help="CSV, JSONL or FHIR files", show_default=False),
    kind: str | None = typer.Option(None, help="ehr_note, repair_ticket or literature, for every record"),
    mapping: str | None = typer.Option(
        None,
        help="a preset (fhir, mtsamples, nestor, pubmed) or a TOML mapping file; options below override it",
    ),
    source: str | None = typer.Option(None, help="source-system name, the first part of each document id"),
    id_column: str | None = typer.Option(None, help="column with the record's id in its source"),
    text_column: str | None = typer.Option(None, help="column with the document text"),
    metadata: list[str] | None = typer.Option(None, help="column copied into metadata; repeatable"),
    format: str | None = typer.Option(None, "--format", help=f"{', '.join(FORMATS)}; default: by extension"),
    tasks: str = typer.Option("classify", help="comma-separated tasks to run on every document"),
    rejects: Path | None = typer.Option(None, help="rejects file (JSONL); default rejects-<time>.jsonl here"),
    chunk_size: int | None = typer.Option(
        None,
        min=1,
        max=10_000,
        help="documents per queue message, short ones too (NIGHTCLERK_CHUNK_MAX_DOCS)",
    ),
    no_progress: bool = typer.Option(False, "--no-progress", help="no progress bar"),
    kind_column: str | None = typer.Option(None, help="column with each record's kind (instead of --kind)"),
    id_template: str | None = typer.Option(None, help="id from columns, e.g. '{Asset}-{_line}'"),
    title_column: str | None = typer.Option(None, help="column with the title (literature)"),
) -> None:
    """Validate documents from FILES and enqueue them in chunks for the workers."""
    try:
        settings = get_settings()
    except ValidationError as exc:
        fields = ", ".join(".".join(str(p) for p in err["loc"]) for err in exc.errors(include_input=False))
        raise _fail(f"invalid NIGHTCLERK_* settings: {fields}") from None
    configure_logging(json=settings.log_json, level=settings.log_level)
    if chunk_size is not None:
        # an explicit size is taken as asked: short documents are not grouped past it
        settings = settings.model_copy(update={"chunk_docs": chunk_size, "chunk_max_docs": chunk_size})
    try:
        task_names = parse_tasks(tasks)
        field_mapping = _mapping(
            mapping,
            kind=kind,
            kind_column=kind_column,
            source=source,
            id_column=id_column,
            id_template=id_template,
            text_column=text_column,
            title_column=title_column,
            metadata=metadata,
        )
        summary = push_files(
            files,
            field_mapping,
            task_names,
            settings,
            rejects_path=rejects,
            progress=not no_progress,
            fmt=format,
        )
    except NightclerkError as exc:
        raise _fail(str(exc)) from None
    except OSError as exc:  # e.g. the rejects file cannot be written
        raise _fail(f"{exc.filename or 'I/O'}: {exc.strerror or type(exc).__name__}") from None
    typer.echo(_summary_line(summary))
    if summary.accepted == 0:
        raise _fail(
            f"nothing accepted: all {summary.rejected} records were rejected"
            if summary.rejected
            else "nothing accepted"
        )
    if summary.rejected:
        raise typer.Exit(code=EXIT_SOME_REJECTED)
