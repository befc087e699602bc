"""``nightclerk feed``: follow the change feed of stored results (ids only, one JSON line per result)."""

from __future__ import annotations

import json
import socket
import sys
from dataclasses import asdict

import typer

from nightclerk.shared.change_feed import ChangeFeed, FeedConsumer
from nightclerk.shared.errors import NightclerkError
from nightclerk.shared.settings import get_settings

app = typer.Typer(
    help="The change feed: every stored result, announced on a Redis Stream.", no_args_is_help=True
)


def _feed() -> ChangeFeed:
    settings = get_settings()
    return ChangeFeed.from_settings(settings)


@app.command("follow")
def follow(
    group: str = typer.Option(..., help="consumer group: it keeps its place across runs"),
    consumer: str = typer.Option(None, help="this reader's name in the group (default: host name)"),
    count: int = typer.Option(None, min=1, help="stop after this many results (default: run until Ctrl-C)"),
    new_only: bool = typer.Option(False, "--new-only", help="a new group starts at the end, not the start"),
    wait_s: float = typer.Option(5.0, min=0.1, help="how long one read waits for new results (at most 10 s)"),
) -> None:
    """Print each announced result as a JSON line and acknowledge it once printed.

    A result printed but not acknowledged (the command was killed in between) is printed again by the next
    run with the same group and consumer: lines are at least once, keyed by (document_id, task, pack_version).
    """
    feed = _feed()
    printed = 0
    try:
        reader = FeedConsumer(feed, group, consumer or socket.gethostname(), from_start=not new_only)
        while count is None or printed < count:
            want = 100 if count is None else min(100, count - printed)
            entries = reader.read(count=want, block_ms=int(wait_s * 1000))
            for entry in entries:
                sys.stdout.write(
                    json.dumps({"entry_id": entry.entry_id, **asdict(entry.announcement)}) + "\n"
                )
            sys.stdout.flush()
            reader.ack(entries)
            printed += len(entries)
    except KeyboardInterrupt:
        pass
    except NightclerkError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    finally:
        feed.close()


@app.command("info")
def info() -> None:
    """The stream's length and, per consumer group, how many results it has not yet read or acknowledged."""
    feed = _feed()
    try:
        typer.echo(f"stream {feed.stream}: {feed.length()} entries")
        for group in feed.groups():
            typer.echo(
                f"  group {group.name}: {group.lag if group.lag is not None else '?'} unread, "
                f"{group.pending} read but not acknowledged, {group.consumers} consumers"
            )
    except NightclerkError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    finally:
        feed.close()
