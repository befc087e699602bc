"""Entry point of the ``nightclerk`` command."""

from __future__ import annotations

import typer

from nightclerk.cli import (
    data_cmd,
    demo_cmd,
    digest_cmd,
    dlq_cmd,
    feed_cmd,
    models_cmd,
    push_cmd,
    results_cmd,
    serve_cmd,
    status_cmd,
    worker_cmd,
    writeback_cmd,
)

app = typer.Typer(
    name="nightclerk",
    help="Batch classification of clinical notes, repair tickets and literature on ONNX Celery workers.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.command("push")(push_cmd.push)
app.command("worker")(worker_cmd.worker)
app.command("results")(results_cmd.results)
app.command("demo")(demo_cmd.demo)
app.command("writeback")(writeback_cmd.writeback)
app.command("serve")(serve_cmd.serve)
app.command("digest")(digest_cmd.digest)
app.command("status")(status_cmd.status)
app.add_typer(models_cmd.app, name="models")
app.add_typer(data_cmd.app, name="data")
app.add_typer(feed_cmd.app, name="feed")
app.add_typer(dlq_cmd.app, name="dlq")

if __name__ == "__main__":
    app()
