"""``nightclerk demo``: a worker on real notes and tickets, start to finish, with measured throughput.

Uses its own queue and its own SQLite store (``var/demo/results.db``, made anew each run) so a re-run
measures inference again instead of finding every result already stored.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from nightclerk.cli.csv_head import csv_head
from nightclerk.cli.results_cmd import results_table
from nightclerk.cli.worker_process import WorkerProcess
from nightclerk.exporters.datasets import mtsamples_path, nestor_path
from nightclerk.producers.mapping import load_preset
from nightclerk.producers.push import push_files
from nightclerk.shared import broker
from nightclerk.shared.errors import NightclerkError
from nightclerk.shared.logging import configure_logging
from nightclerk.shared.settings import Settings, get_settings
from nightclerk.shared.store import ResultStore

DEMO_QUEUE = "nightclerk-demo"
NESTOR_DIR = Path("var/data/nestor")


PUBMED_CSV = Path("var/data/pubmed/pubtype.csv")
LITERATURE_LIMIT = 1000  # of 18,445 abstracts: keeps the demo near a minute on two cores


@dataclass(frozen=True)
class DemoInput:
    path: Path
    preset: str
    kind: str
    limit: int | None = None


def demo_inputs() -> list[DemoInput]:
    found = []
    notes = mtsamples_path()
    if notes is not None:
        found.append(DemoInput(notes, "mtsamples", "ehr_note"))
    tickets = nestor_path(NESTOR_DIR)
    if tickets.is_file():
        found.append(DemoInput(tickets, "nestor", "repair_ticket"))
    if PUBMED_CSV.is_file():
        found.append(DemoInput(PUBMED_CSV, "pubmed", "literature", LITERATURE_LIMIT))
    return found


def demo(
    timeout: float = typer.Option(900.0, help="seconds to wait for every result"),
    preflight: bool = typer.Option(False, "--preflight", help="only check that Redis answers, then exit"),
) -> None:
    """Start a worker, push real notes and tickets, wait for every result, print them and the throughput."""
    console = Console(soft_wrap=True)
    configure_logging(json=False, level="WARNING")
    base = get_settings()
    try:
        broker.ping(base)
    except NightclerkError as exc:
        typer.echo(f"nightclerk demo: {exc}", err=True)
        raise typer.Exit(code=2) from None
    if preflight:
        return

    inputs = _usable_inputs(console, base)
    demo_dir = base.data_dir / "demo"
    database = demo_dir / "results.db"
    for stale in demo_dir.glob("results.db*"):
        stale.unlink()
    broker.client(base).delete(DEMO_QUEUE)
    overrides = {"queue": DEMO_QUEUE, "database_url": f"sqlite:///{database.resolve()}", "log_json": "true"}
    settings = base.with_overrides(**overrides)

    console.print("[bold]1/3[/] starting a worker (packs are sha256-verified before it consumes)…")
    worker = WorkerProcess(overrides, demo_dir / "worker.log")  # the rest of the settings it inherits
    try:
        worker.start()
        console.print(f"    {_device_line(worker.log_path)}")
        console.print("[bold]2/3[/] pushing documents…")
        started = time.perf_counter()
        accepted = 0
        for item in inputs:
            summary = push_files(
                [
                    item.path
                    if item.limit is None
                    else csv_head(item.path, demo_dir / "inputs" / item.path.name, item.limit)
                ],
                load_preset(item.preset),
                ["classify"],
                settings,
                rejects_path=demo_dir / f"rejects-{item.preset}.jsonl",
                progress=False,
            )
            accepted += summary.accepted
            console.print(
                f"    {item.path.name}: accepted {summary.accepted}, rejected {summary.rejected}, "
                f"{summary.chunks} chunks"
            )
        pushed = time.perf_counter() - started
        store = ResultStore(settings.resolved_database_url)
        store.create_schema()
        console.print("[bold]3/3[/] waiting for the worker…")
        _wait(store, accepted, timeout)
        elapsed = time.perf_counter() - started
    except NightclerkError as exc:
        typer.echo(f"nightclerk demo: {exc}", err=True)
        raise typer.Exit(code=2) from None
    finally:
        worker.stop()

    _report(console, store, accepted, pushed, elapsed, database)


def _usable_inputs(console: Console, settings: Settings) -> list[DemoInput]:
    inputs = []
    for item in demo_inputs():
        pack = settings.classify_packs.get(item.kind)
        if pack and (settings.packs_dir / pack / "manifest.json").is_file():
            inputs.append(item)
        else:
            console.print(
                f"[yellow]skipping {item.path.name}:[/] no pack {pack!r} in {settings.packs_dir} "
                "(`make packs` builds it)"
            )
    if not inputs:
        typer.echo("nightclerk demo: nothing to push — run `make packs` (and `make data`) first", err=True)
        raise typer.Exit(code=2)
    if not any(item.kind == "ehr_note" for item in inputs):
        console.print(
            "[yellow]MTSamples (../shared/data) is not here: the demo runs on repair tickets only[/]"
        )
    return inputs


def _device_line(log_path: Path) -> str:
    for line in log_path.read_text(errors="replace").splitlines():
        if '"device_selected"' in line:
            event = json.loads(line)
            return f"device: {event['device']} ({event['provider']})"
    return "device: unknown"


def _wait(store: ResultStore, expected: int, timeout: float) -> None:
    columns = (TextColumn("    results"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    deadline = time.monotonic() + timeout
    with Progress(*columns, transient=True) as progress:
        bar = progress.add_task("results", total=expected)
        while (done := store.count()) < expected:
            progress.update(bar, completed=done)
            if time.monotonic() > deadline:
                raise NightclerkError(f"only {done} of {expected} results after {timeout:.0f}s")
            time.sleep(0.25)


def _report(
    console: Console, store: ResultStore, accepted: int, pushed: float, elapsed: float, database: Path
) -> None:
    rows = list(store.rows())
    sample = [
        r
        for kind in ("ehr_note", "repair_ticket", "literature")
        for r in [x for x in rows if x.kind == kind][:4]
    ]
    console.print(results_table(sample, f"{len(rows)} results (a sample)", compact=True))
    for pack in sorted({(r.pack_name, r.pack_version, r.precision) for r in rows}):
        console.print(f"  pack {pack[0]}@{pack[1]} ({pack[2]})")
    for kind, count in Counter(r.kind for r in rows).items():
        top = Counter(r.top_label for r in rows if r.kind == kind).most_common(3)
        console.print(f"  {kind}: {count} results; most frequent labels {top}")
    console.print(
        f"[bold]{accepted} documents in {elapsed:.1f}s: {accepted / elapsed:.0f} docs/s end to end[/] "
        f"(push {pushed:.1f}s, push → Redis → worker → store)"
    )
    console.print(f"results: NIGHTCLERK_DATABASE_URL=sqlite:///{database.resolve()} nightclerk results")
    store.close()
