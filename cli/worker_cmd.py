"""``nightclerk worker``: run a Celery worker on this machine's GPU, or its CPU."""

from __future__ import annotations

import typer

from nightclerk.shared.errors import NightclerkError
from nightclerk.shared.settings import get_settings


def worker(
    name: str = typer.Option(None, help="worker name (default nightclerk-PID@HOST)"),
    queue: str = typer.Option(None, help="queue to consume (default NIGHTCLERK_QUEUE)"),
    device: str = typer.Option(None, help="auto, cpu or cuda (default NIGHTCLERK_DEVICE)"),
    loglevel: str = typer.Option("INFO", help="log level"),
    metrics_port: int = typer.Option(
        None, help="serve Prometheus /metrics here (default NIGHTCLERK_METRICS_PORT)"
    ),
) -> None:
    """Start a worker: one process per device, model packs verified before the first chunk."""
    from nightclerk.workers.worker_main import run_worker

    chosen = {"queue": queue, "device": device, "metrics_port": metrics_port}
    overrides = {key: value for key, value in chosen.items() if value}
    settings = get_settings().with_overrides(**overrides)
    try:
        run_worker(settings, name=name, loglevel=loglevel)
    except NightclerkError as exc:
        typer.echo(f"nightclerk worker: {exc}", err=True)
        raise typer.Exit(code=2) from None
