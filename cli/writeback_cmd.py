"""``nightclerk writeback``: deliver each ticket's result to the ticketing system, following the feed."""

from __future__ import annotations

import signal
import socket
import threading
from types import FrameType

import typer

from nightclerk.downstream.delivery_log import DeliveryLog
from nightclerk.downstream.writeback import WritebackConfig, WritebackSink
from nightclerk.shared.change_feed import ChangeFeed, FeedConsumer
from nightclerk.shared.errors import ConfigError, NightclerkError
from nightclerk.shared.logging import configure_logging
from nightclerk.shared.settings import get_settings
from nightclerk.shared.store import open_store


def writeback(
    count: int = typer.Option(
        None, min=1, help="stop after settling this many feed entries (default: run on)"
    ),
    consumer: str = typer.Option(None, help="this sink's name in the consumer group (default: host name)"),
) -> None:
    """POST each stored ticket result to NIGHTCLERK_WRITEBACK_URL_TEMPLATE; stop with Ctrl-C or SIGTERM.

    A failing endpoint is retried with backoff until it answers; what was delivered is recorded in the
    ``deliveries`` table beside the results.
    """
    settings = get_settings()
    configure_logging(json=settings.log_json, level=settings.log_level)
    try:
        if not settings.writeback_url_template:
            raise ConfigError(
                "set NIGHTCLERK_WRITEBACK_URL_TEMPLATE (e.g. https://host/api/{source_id}/result)"
            )
        auth = settings.writeback_auth_header
        config = WritebackConfig(
            url_template=settings.writeback_url_template,
            auth_header=(auth.get_secret_value() or None) if auth is not None else None,  # empty: none
            kinds=tuple(settings.writeback_kinds),
            timeout_s=settings.writeback_timeout_s,
            backoff_max_s=settings.writeback_backoff_max_s,
        )
        store = open_store(settings)
        delivery_log = DeliveryLog(store, settings.writeback_group)
        delivery_log.create_schema()
        feed = ChangeFeed.from_settings(settings)
        reader = FeedConsumer(feed, settings.writeback_group, consumer or socket.gethostname())
    except NightclerkError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    stop = threading.Event()

    def _stop(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    sink = WritebackSink(config, reader, store, delivery_log)
    try:
        stats = sink.run(stop, max_entries=count)
    except NightclerkError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    finally:
        sink.close()
        feed.close()
        store.close()
    typer.echo(
        f"delivered {stats.delivered}, rejected {stats.rejected}, skipped {stats.skipped}, "
        f"already delivered {stats.duplicates}, other kinds {stats.ignored}, retries {stats.retries}"
    )
