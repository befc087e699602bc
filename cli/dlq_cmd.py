"""``nightclerk dlq``: the dead letters -- list them, look at one, send them back to the queue.

Listing and showing print ids, kinds, packs, attempts, reasons and times, never document text; ``show
--text`` prints the text of one document on purpose, for an operator who needs to see why it fails.
``requeue`` sends documents back in chunks (signed, when a signing key is set) and deletes each chunk's
dead letters once the chunk is on the queue, so a document is never in neither place.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from enum import StrEnum

import typer
from rich.console import Console
from rich.table import Table

from nightclerk.producers.chunking import Chunker
from nightclerk.producers.enqueue import Enqueuer
from nightclerk.shared.errors import NightclerkError
from nightclerk.shared.settings import Settings, get_settings
from nightclerk.shared.store import DeadLetter, DeadLetterStore, open_store

app = typer.Typer(
    help="Dead letters: documents the workers gave up on, with their reasons.", no_args_is_help=True
)


class Format(StrEnum):
    table = "table"
    jsonl = "jsonl"


def _dead_letters(settings: Settings) -> DeadLetterStore:
    return DeadLetterStore(open_store(settings))


def _fail(command: str, exc: NightclerkError) -> typer.Exit:
    typer.echo(f"nightclerk dlq {command}: {exc}", err=True)
    return typer.Exit(code=2)


def _summary(letter: DeadLetter) -> dict[str, object]:
    """A dead letter without its document: what may be printed and logged."""
    return {
        "document_id": letter.document_id,
        "task": letter.task,
        "kind": letter.kind,
        "pack": f"{letter.pack_name}@{letter.pack_version}",
        "attempts": letter.attempts,
        "reason": letter.reason,
        "chunk_id": letter.chunk_id,
        "worker_id": letter.worker_id,
        "first_failed_at": letter.first_failed_at.isoformat(),
        "last_failed_at": letter.last_failed_at.isoformat(),
    }


@app.command("list")
def list_letters(
    task: str = typer.Option(None, help="classify or summarize"),
    kind: str = typer.Option(None, help="ehr_note, repair_ticket or literature"),
    limit: int = typer.Option(50, min=1, help="at most this many"),
    format: Format = typer.Option(Format.table, "--format", "-f", help="table or jsonl"),
) -> None:
    """The dead letters, oldest failure first: document, task, pack, attempts, reason."""
    try:
        letters = _dead_letters(get_settings()).letters(task=task, kind=kind, limit=limit)
    except NightclerkError as exc:
        raise _fail("list", exc) from None
    if format is Format.jsonl:
        for letter in letters:
            typer.echo(json.dumps(_summary(letter)))
        return
    table = Table(title=f"dead letters ({len(letters)}{'+' if len(letters) == limit else ''})")
    for column in ("document", "task", "kind", "pack", "attempts", "reason", "last failed (UTC)"):
        table.add_column(column, overflow="fold")
    for letter in letters:
        table.add_row(
            letter.document_id, letter.task, letter.kind, f"{letter.pack_name}@{letter.pack_version}",
            str(letter.attempts), letter.reason, f"{letter.last_failed_at:%Y-%m-%d %H:%M:%S}",
        )  # fmt: skip
    Console().print(table)


@app.command("show")
def show(
    document_id: str = typer.Argument(..., help="the document id, as `dlq list` shows it"),
    task: str = typer.Option(None, help="classify or summarize (when it failed both)"),
    text: bool = typer.Option(
        False, "--text", help="also print the document's text (PHI: mind the terminal)"
    ),
) -> None:
    """One dead letter in full: where it failed, why, how often; the text only with --text."""
    try:
        letters = _dead_letters(get_settings()).letters(task=task, document_ids=[document_id])
    except NightclerkError as exc:
        raise _fail("show", exc) from None
    if not letters:
        typer.echo(f"nightclerk dlq show: no dead letter for {document_id}", err=True)
        raise typer.Exit(code=1)
    for letter in letters:
        body = str(letter.document.get("text", ""))
        fields = {
            **_summary(letter),
            "source": letter.document.get("source"),
            "source_id": letter.document.get("source_id"),
            "text_chars": len(body),
            "text_sha256": hashlib.sha256(body.encode("utf-8", "surrogatepass")).hexdigest()[:16],
        }
        for name, value in fields.items():
            typer.echo(f"{name:>16}: {value}")
        if text:
            typer.echo(f"{'text':>16}:")
            typer.echo(body)
        typer.echo("")


@app.command("requeue")
def requeue(
    document_ids: list[str] = typer.Argument(None, help="document ids (or --all)"),
    all_letters: bool = typer.Option(False, "--all", help="every dead letter (narrowed by --task/--kind)"),
    task: str = typer.Option(None, help="only this task"),
    kind: str = typer.Option(None, help="only this kind"),
) -> None:
    """Send dead letters back to the queue; each is deleted once its chunk is on the queue."""
    if not document_ids and not all_letters:
        typer.echo("nightclerk dlq requeue: name document ids, or --all", err=True)
        raise typer.Exit(code=2)
    settings = get_settings()
    try:
        dead_letters = _dead_letters(settings)
        letters = dead_letters.letters(task=task, kind=kind, document_ids=document_ids or None)
        sent = _requeue(settings, dead_letters, letters)
    except NightclerkError as exc:
        raise _fail("requeue", exc) from None
    typer.echo(f"requeued {sent} of {len(letters)} dead letters to queue {settings.queue}")


def _requeue(settings: Settings, dead_letters: DeadLetterStore, letters: list[DeadLetter]) -> int:
    """Chunks of one kind and one task; each chunk's letters deleted once it is sent."""
    groups: dict[tuple[str, str], list[DeadLetter]] = defaultdict(list)
    for letter in letters:
        groups[(letter.kind, letter.task)].append(letter)
    sent = 0
    with Enqueuer(settings) as enqueuer:
        enqueuer.check()
        for (_, task), group in sorted(groups.items()):
            by_id = {letter.document_id: letter for letter in group}
            chunker = Chunker.from_settings([task], settings)
            chunks = [chunk for letter in group for chunk in chunker.add(letter.as_document())]
            for chunk in [*chunks, *chunker.flush()]:
                enqueuer.send(chunk)
                sent += dead_letters.delete(by_id[d.id] for d in chunk.documents)
    return sent
