"""``nightclerk serve``: run the webhook intake (FastAPI on uvicorn)."""

from __future__ import annotations

import typer
import uvicorn

from nightclerk.producers.webhook import create_app
from nightclerk.shared.errors import NightclerkError
from nightclerk.shared.logging import configure_logging
from nightclerk.shared.settings import get_settings


def serve(
    host: str = typer.Option("127.0.0.1", help="address to listen on (0.0.0.0: every interface)"),
    port: int = typer.Option(8080, min=1, max=65535),
) -> None:
    """Accept records over HTTP (POST /v1/records/{mapping}, bearer token) and queue them like `push`.

    The OpenAPI description is at /openapi.json, a browsable one at /docs.
    """
    settings = get_settings()
    configure_logging(json=settings.log_json, level=settings.log_level)
    try:
        app = create_app(settings)
    except NightclerkError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    # uvicorn's access log would print request paths only, but ours carries counts: keep one log
    uvicorn.run(app, host=host, port=port, access_log=False, log_level="warning")
