"""The model-pack manifest and its integrity check.

A pack is a folder: ``manifest.json``, ``tokenizer.json`` and one ONNX file per precision variant (a
generation pack: one file per graph of each variant, see :mod:`nightclerk.shared.generation_io`). The
manifest names every file with its sha256; :func:`verify_pack` recomputes them and refuses a pack whose
files differ (tampered, truncated or missing).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from nightclerk.shared.errors import PackIntegrityError, PackInvalid, PackNotFound
from nightclerk.shared.generation_io import Layout

MANIFEST_FILE = "manifest.json"
TOKENIZER_FILE = "tokenizer.json"
VariantPrecision = Literal["fp32", "fp16", "int8"]


class Variant(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    precision: VariantPrecision
    file: str
    batch_independent: bool = Field(
        description="True when a document's output does not depend on the other documents in its batch "
        "(false for dynamic int8 quantization, whose activation scales are computed per batch)"
    )
    device: Literal["cpu", "cuda", "any"] = "any"
    recipe: str | None = Field(
        default=None,
        description="int8 only: which layers were quantized, e.g. 'all' or 'ffn-down-fp32' (the feed-forward "
        "down-projections kept in fp32 to pass the label-agreement gate)",
    )
    graphs: dict[str, str] = Field(
        default_factory=dict,
        description="generation packs: graph name (decoder, encoder, decoder_with_past) -> file; "
        "``file`` is the decoder's",
    )


def template_for(prompts: Mapping[str, str], kind: str) -> str:
    """The prompt template for ``kind``: its own, else ``default``, else the first one."""
    return prompts.get(kind) or prompts.get("default") or next(iter(prompts.values()))


class GenerationSpec(BaseModel):
    """How a generation pack is prompted and decoded (the defaults a worker uses)."""

    model_config = ConfigDict(extra="forbid")

    layout: Layout
    eos_token_ids: list[int] = Field(min_length=1)
    pad_token_id: int = Field(ge=0)
    decoder_start_token_id: int | None = Field(default=None, description="encoder-decoder only")
    max_input_tokens: int = Field(ge=8, description="the document is cut to this many tokens")
    max_new_tokens: int = Field(ge=1, le=1024)
    num_beams: int = Field(default=1, ge=1, le=16)
    repetition_penalty: float = Field(default=1.0, gt=0)
    no_repeat_ngram_size: int = Field(default=0, ge=0)
    prompts: dict[str, str] = Field(
        min_length=1,
        description="document kind (or 'default') -> prompt template holding {text} once; special tokens "
        "written out (e.g. <|im_start|>) are tokenized as such",
    )

    @model_validator(mode="after")
    def _well_formed(self) -> GenerationSpec:
        bad = [kind for kind, template in self.prompts.items() if template.count("{text}") != 1]
        if bad:
            raise ValueError(f"prompt templates without exactly one {{text}}: {bad}")
        if self.layout == "encoder-decoder" and self.decoder_start_token_id is None:
            raise ValueError("an encoder-decoder pack needs decoder_start_token_id")
        return self

    def prompt_for(self, kind: str) -> str:
        return template_for(self.prompts, kind)


class ExtractiveSpec(BaseModel):
    """How an extractive summarize pack picks its summary: a sentence classifier scores the first
    ``max_sentences`` sentences of the document, each given as ``[position] sentence``, and the
    ``summary_sentences`` with the highest ``positive_label`` probability are the summary, in document
    order."""

    model_config = ConfigDict(extra="forbid")

    positive_label: str
    max_sentences: int = Field(ge=1, le=256)
    summary_sentences: int = Field(default=1, ge=1, le=16)
    min_sentence_words: int = Field(default=2, ge=1, description="shorter sentences are not candidates")


class PackManifest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9\-_.]{0,63}$")
    version: str
    task: Literal["classify", "summarize"]
    labels: list[str] = Field(default_factory=list, description="classify: two or more, in logit order")
    max_tokens: int = Field(ge=8, le=8192)
    inputs: list[str] = Field(min_length=1, description="ONNX input names, in order")
    output: str = "logits"
    variants: list[Variant] = Field(min_length=1)
    opset: int
    source_checkpoint: str
    data_sha256: str | None = None
    method: str = Field(description="how the weights were made, e.g. linear-probe, finetune, random-init")
    files: dict[str, str] = Field(description="relative path -> sha256 of every file in the pack")
    metrics: dict[str, Any] = Field(default_factory=dict)
    generation: GenerationSpec | None = None
    extractive: ExtractiveSpec | None = None
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))

    @model_validator(mode="after")
    def _task_has_what_it_needs(self) -> PackManifest:
        if self.task == "classify" and len(self.labels) < 2:
            raise ValueError("a classify pack needs two or more labels")
        if self.task == "summarize" and (self.generation is None) == (self.extractive is None):
            raise ValueError("a summarize pack needs generation or extractive settings (exactly one)")
        if self.extractive is not None and (
            len(self.labels) < 2 or self.extractive.positive_label not in self.labels
        ):
            raise ValueError("an extractive pack needs two or more labels, its positive label among them")
        return self

    @model_validator(mode="after")
    def _files_cover_variants(self) -> PackManifest:
        named = [v.file for v in self.variants] + [f for v in self.variants for f in v.graphs.values()]
        missing = [file for file in named if file not in self.files]
        if TOKENIZER_FILE not in self.files:
            missing.append(TOKENIZER_FILE)
        if missing:
            raise ValueError(f"files without a sha256 in the manifest: {missing}")
        return self

    def variant(self, precision: str) -> Variant | None:
        return next((v for v in self.variants if v.precision == precision), None)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def pack_version(files: dict[str, str]) -> str:
    """12 hex of the hash of every file's sha256: the same files give the same version on any day, so a
    rebuild that changes nothing does not make the result store compute everything again."""
    joined = "\n".join(f"{name}={digest}" for name, digest in sorted(files.items()))
    return hashlib.sha256(joined.encode()).hexdigest()[:12]


def read_manifest(pack_dir: Path) -> PackManifest:
    path = pack_dir / MANIFEST_FILE
    if not pack_dir.is_dir():
        raise PackNotFound(f"no model pack at {pack_dir}")
    if not path.is_file():
        raise PackInvalid(f"{path} is missing")
    try:
        return PackManifest.model_validate_json(path.read_bytes())
    except ValidationError as exc:
        raise PackInvalid(
            f"{path} does not validate: {exc.error_count()} error(s): {exc.errors()[0]['msg']}"
        ) from None


def verify_pack(pack_dir: Path, task: str | None = None) -> PackManifest:
    """Read the manifest and check every file's sha256; raise :class:`PackIntegrityError` on a mismatch, and
    :class:`PackInvalid` when ``task`` is given and the pack serves another."""
    manifest = read_manifest(pack_dir)
    if task is not None and manifest.task != task:
        raise PackInvalid(f"pack {manifest.name} is a {manifest.task} pack, not a {task} pack")
    root = pack_dir.resolve()
    for name, expected in sorted(manifest.files.items()):
        path = (pack_dir / name).resolve()
        if root not in path.parents:
            raise PackInvalid(f"pack file {name!r} points outside the pack folder")
        if not path.is_file():
            raise PackIntegrityError(f"pack {manifest.name}: file {name} is missing")
        actual = sha256_file(path)
        if actual != expected:
            raise PackIntegrityError(
                f"pack {manifest.name}: {name} has sha256 {actual[:12]}…, the manifest says {expected[:12]}…"
            )
    return manifest


def write_manifest(pack_dir: Path, manifest: PackManifest) -> Path:
    path = pack_dir / MANIFEST_FILE
    path.write_text(manifest.model_dump_json(indent=2) + "\n", encoding="utf-8")
    return path
