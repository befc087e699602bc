"""The demo packs and where their data comes from: built when missing, skipped with a reason without data.

All three are fine-tuned from all-MiniLM-L6-v2 at 128 tokens, sized to build in under ~10 minutes on two
CPU cores.

- ``ehr-specialty``: MTSamples transcriptions -> clinical specialty (the 12 most frequent + other). MTSamples
  files almost every report twice: under its specialty *and* under a document type (a cardiology H&P is
  both *Cardiovascular / Pulmonary* and *Consult - History and Phy.*). The document-type categories
  (:data:`MTSAMPLES_DOCUMENT_TYPES`) are dropped before deduplication, so each report keeps its specialty
  and the classifier is not asked to guess which of a report's two filings the data set happened to keep.
- ``ticket-system``: nestor excavator work orders (OriginalShorttext) -> MajorSystem (top 10 + other); rows
  whose MajorSystem is ``NA`` (not tagged) are left out.
- ``lit-pubtype``: PubMed title + abstract -> publication type (research, review, case-report, commentary;
  ``trial`` has too few rows). Research is 88 % of the file, so each label is capped at 800 rows: all the
  rare ones are kept and the eval split has enough of each for a meaningful macro-F1.
- ``summarizer-extractive`` (summarize task): MiniLM picks the sentence of a note its MTSamples description
  was drawn from (:mod:`nightclerk.exporters.generation.extractive_pack`); CPU-built like the others.
- ``summarizer`` (summarize task, every document kind): SmolLM2-135M-Instruct with a LoRA adapter merged in,
  built only when the adapter is there -- fine-tuning it wants a GPU (see the README's Summarization
  section), and the zero-shot model loses to the first sentence of the note.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from nightclerk.exporters.datasets import (
    MTSAMPLES_MISSING,
    NESTOR_WHEEL,
    fetch_nestor,
    mtsamples_path,
    nestor_path,
)
from nightclerk.shared.errors import NightclerkError, PackError
from nightclerk.shared.manifest import PackManifest, verify_pack


@dataclass(frozen=True)
class DemoPack:
    name: str
    text_column: str
    label_column: str
    top_labels: int
    min_examples: int
    max_tokens: int
    max_rows: int | None
    max_per_label: int | None = None
    max_train_rows: int | None = None
    drop_labels: frozenset[str] = frozenset()


MTSAMPLES_DOCUMENT_TYPES = frozenset(
    {
        "Consult - History and Phy.",
        "SOAP / Chart / Progress Notes",
        "Discharge Summary",
        "Office Notes",
        "Letters",
        "Emergency Room Reports",
        "IME-QME-Work Comp etc.",
        "General Medicine",
    }
)
EHR_SPECIALTY = DemoPack(
    "ehr-specialty", "transcription", "specialty", 12, 10, 128, 3000, drop_labels=MTSAMPLES_DOCUMENT_TYPES
)
TICKET_SYSTEM = DemoPack("ticket-system", "OriginalShorttext", "MajorSystem", 10, 20, 128, 5000)
LIT_PUBTYPE = DemoPack("lit-pubtype", "text", "pubtype", 4, 50, 128, None, max_per_label=800)
DEMO_PACKS = (EHR_SPECIALTY, TICKET_SYSTEM, LIT_PUBTYPE)


@dataclass(frozen=True)
class Outcome:
    name: str
    status: str  # "present", "built", "skipped", "failed"
    detail: str
    manifest: PackManifest | None = None


def demo_data(pack: DemoPack, data_dir: Path, wheels_dir: Path) -> tuple[Path | None, str]:
    """The data file for a demo pack (extracting nestor from its wheel if needed), or None and why."""
    if pack is EHR_SPECIALTY:
        path = mtsamples_path()
        return (path, str(path)) if path else (None, MTSAMPLES_MISSING)
    if pack is LIT_PUBTYPE:
        from nightclerk.exporters.pubmed import PUBMED_FILE, PUBMED_WHEEL, fetch_pubmed

        csv_path = data_dir / "pubmed" / PUBMED_FILE
        if csv_path.is_file():
            return csv_path, str(csv_path)
        if (wheels_dir / PUBMED_WHEEL).is_file():
            return fetch_pubmed(
                wheels_dir, data_dir / "pubmed"
            ), f"extracted from {wheels_dir / PUBMED_WHEEL}"
        return None, f"{csv_path} missing and no {PUBMED_WHEEL} in {wheels_dir} (run `nightclerk data fetch`)"
    target = nestor_path(data_dir / "nestor")
    if target.is_file():
        return target, str(target)
    if (wheels_dir / NESTOR_WHEEL).is_file():
        return fetch_nestor(wheels_dir, data_dir / "nestor"), f"extracted from {wheels_dir / NESTOR_WHEEL}"
    return None, f"{target} missing and no {NESTOR_WHEEL} in {wheels_dir} (run `nightclerk data fetch`)"


def _present(packs_dir: Path, name: str, task: str | None, say: Callable[[str], None]) -> Outcome | None:
    """``present`` when the pack is there and verifies; None (after saying why) when it must be built."""
    if not (packs_dir / name).exists():
        return None
    try:
        manifest = verify_pack(packs_dir / name, task=task)
    except PackError as exc:
        say(f"{name}: present but unusable ({exc}); rebuilding")
        return None
    return Outcome(name, "present", f"version {manifest.version}", manifest)


def _skipped(name: str, reason: str, say: Callable[[str], None]) -> Outcome:
    say(f"{name}: skipped: {reason}")
    return Outcome(name, "skipped", reason)


def _attempt(name: str, build: Callable[[], PackManifest], say: Callable[[str], None]) -> Outcome:
    """Run one build; a failure is an outcome, not an exception, so the next pack is still built."""
    try:
        manifest = build()
    except NightclerkError as exc:
        say(f"{name}: failed: {type(exc).__name__}: {exc}")
        return Outcome(name, "failed", f"{type(exc).__name__}: {exc}")
    return Outcome(name, "built", f"version {manifest.version}", manifest)


def ensure_demo_packs(
    packs_dir: Path,
    data_dir: Path,
    wheels_dir: Path,
    *,
    force: bool = False,
    say: Callable[[str], None] = print,
    progress: bool = True,
    summarizer_adapter: Path | None = None,
    models_dir: Path | None = None,
) -> list[Outcome]:
    """Build each demo pack that is missing or fails verification (all of them with ``force``), then the
    summarizer when ``summarizer_adapter`` is given.

    A pack whose build fails is reported as ``failed`` and the next one is still built.
    """
    from nightclerk.exporters.build import build_pack

    models = models_dir if models_dir is not None else wheels_dir.parent / "models"
    outcomes: list[Outcome] = []
    for pack in DEMO_PACKS:
        present = None if force else _present(packs_dir, pack.name, None, say)
        if present is not None:
            outcomes.append(present)
            continue
        data, where = demo_data(pack, data_dir, wheels_dir)
        if data is None:
            outcomes.append(_skipped(pack.name, where, say))
            continue
        say(f"{pack.name}: building from {where}")
        outcomes.append(
            _attempt(
                pack.name,
                partial(
                    build_pack,
                    pack.name,
                    data,
                    pack.text_column,
                    pack.label_column,
                    packs_dir,
                    method="finetune",
                    top_labels=pack.top_labels,
                    min_examples=pack.min_examples,
                    max_tokens=pack.max_tokens,
                    max_rows=pack.max_rows,
                    max_per_label=pack.max_per_label,
                    max_train_rows=pack.max_train_rows,
                    drop_labels=pack.drop_labels,
                    progress=progress,
                    torch_dir=models / "torch" / pack.name,
                ),
                say,
            )
        )
    outcomes.append(ensure_extractive(packs_dir, force=force, say=say, progress=progress))
    if summarizer_adapter is not None:
        outcomes.append(
            ensure_summarizer(packs_dir, wheels_dir, models, summarizer_adapter, force=force, say=say)
        )
    return outcomes


def ensure_extractive(
    packs_dir: Path, *, force: bool = False, say: Callable[[str], None] = print, progress: bool = True
) -> Outcome:
    """The ``summarizer-extractive`` pack: verified when present, else built from MTSamples."""
    from nightclerk.exporters.generation.extractive_pack import ExtractiveRecipe, build_extractive

    recipe = ExtractiveRecipe()
    present = None if force else _present(packs_dir, recipe.name, "summarize", say)
    if present is not None:
        return present
    notes = mtsamples_path()
    if notes is None:
        return _skipped(recipe.name, MTSAMPLES_MISSING, say)
    say(f"{recipe.name}: building from {notes}")
    return _attempt(
        recipe.name,
        lambda: build_extractive(packs_dir, mtsamples=notes, recipe=recipe, log=say, progress=progress),
        say,
    )


def ensure_summarizer(
    packs_dir: Path,
    wheels_dir: Path,
    models_dir: Path,
    adapter: Path,
    *,
    force: bool = False,
    say: Callable[[str], None] = print,
) -> Outcome:
    """The ``summarizer`` pack: verified when present, else built from SmolLM2 + ``adapter`` when both are
    here, else skipped with the reason."""
    from nightclerk.exporters.generation.lora import ADAPTER_WEIGHTS
    from nightclerk.exporters.generation.smollm2 import SMOLLM2_WHEEL

    name = "summarizer"
    present = None if force else _present(packs_dir, name, "summarize", say)
    if present is not None:
        return present
    if not (adapter / ADAPTER_WEIGHTS).is_file():
        return _skipped(
            name, f"no LoRA adapter at {adapter} (fine-tune one on a GPU: README, Summarization)", say
        )
    if not (wheels_dir / SMOLLM2_WHEEL).is_file():
        return _skipped(name, f"no {SMOLLM2_WHEEL} in {wheels_dir} (make {wheels_dir / SMOLLM2_WHEEL})", say)
    notes = mtsamples_path()
    if notes is None:
        return _skipped(name, MTSAMPLES_MISSING, say)
    from nightclerk.exporters.generation.summarizer_pack import SummarizerRecipe, build_summarizer

    say(f"{name}: building from SmolLM2-135M-Instruct + {adapter}")
    recipe = SummarizerRecipe(name=name, adapter_dir=adapter)
    return _attempt(
        name,
        lambda: build_summarizer(
            packs_dir, wheels_dir=wheels_dir, models_dir=models_dir, mtsamples=notes, recipe=recipe, log=say
        ),
        say,
    )
