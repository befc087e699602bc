"""``nightclerk status``: the queue, the workers that answer, recent throughput of the store, dead letters,
the feed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import typer
from rich.console import Console
from rich.table import Table

from nightclerk.shared import broker
from nightclerk.shared.celery_app import make_celery
from nightclerk.shared.change_feed import ChangeFeed
from nightclerk.shared.errors import NightclerkError
from nightclerk.shared.ledger import ChunkLedger
from nightclerk.shared.settings import get_settings
from nightclerk.shared.store import DeadLetterStore, open_store

WINDOWS = (
    ("last 5 min", timedelta(minutes=5)),
    ("last hour", timedelta(hours=1)),
    ("last 24 h", timedelta(days=1)),
)


def status(
    wait_s: float = typer.Option(1.0, min=0.1, help="how long to wait for workers to answer a ping"),
) -> None:
    """One look at the whole pipeline; exit status 2 when Redis or the store cannot be reached."""
    settings = get_settings()
    console = Console()
    try:
        waiting = broker.queue_depth(settings)
        unacked = broker.unacked_count(settings)
        outstanding = ChunkLedger(broker.client(settings), settings.queue).outstanding()
        app = make_celery(settings)
        try:
            answers = app.control.ping(timeout=wait_s) or []
        finally:
            app.close()
        workers = sorted(name for answer in answers for name in answer)
        store = open_store(settings, create=False)
        try:
            now = datetime.now(UTC)
            stored = [(label, span, store.count(since=now - span)) for label, span in WINDOWS]
            dead = DeadLetterStore(store).count()
        finally:
            store.close()
        feed = ChangeFeed.from_settings(settings)
        try:
            feed_length, groups = feed.length(), feed.groups()
        finally:
            feed.close()
    except NightclerkError as exc:
        typer.echo(f"nightclerk status: {exc}", err=True)
        raise typer.Exit(code=2) from None

    table = Table(title="nightclerk", show_header=False)
    table.add_row(
        "queue", f"{settings.queue}: {waiting} waiting, {unacked} delivered and not yet acknowledged"
    )
    table.add_row("chunks on record", f"{outstanding} sent and not yet finished (the ledger)")
    table.add_row("workers", f"{len(workers)} answered" + (f": {', '.join(workers)}" if workers else ""))
    for label, span, count in stored:
        per_minute = count / (span.total_seconds() / 60)
        table.add_row(f"stored, {label}", f"{count} results ({per_minute:.1f} per minute)")
    dead_line = ", ".join(f"{count} {task}" for task, count in dead.items()) or "none"
    table.add_row("dead letters", dead_line + (" (nightclerk dlq list)" if dead else ""))
    table.add_row("change feed", f"{settings.feed_stream}: {feed_length} entries")
    for group in groups:
        lag = "?" if group.lag is None else str(group.lag)
        table.add_row(f"  group {group.name}", f"{lag} unread, {group.pending} unacknowledged")
    console.print(table)
