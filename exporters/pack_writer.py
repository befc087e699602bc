"""Write a pack into a hidden staging folder beside its final place, then rename it into place.

A build that fails (or is interrupted) removes its staging folder, so the packs folder never holds a half
pack; a pack being replaced stays readable until the rename. Staging folders start with a dot, which
``nightclerk models list`` skips.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import uuid
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from nightclerk.exporters.errors import BuildError, OutputNotWritable
from nightclerk.exporters.tokens import load_tokenizer
from nightclerk.shared.manifest import (
    MANIFEST_FILE,
    TOKENIZER_FILE,
    ExtractiveSpec,
    GenerationSpec,
    PackManifest,
    Variant,
    pack_version,
    sha256_file,
    write_manifest,
)

NAME_PATTERN = PackManifest.model_fields["name"].metadata[0].pattern


def check_name(name: str) -> None:
    """Raise :class:`BuildError` unless ``name`` is a valid pack name (checked before any long work)."""
    if not re.fullmatch(NAME_PATTERN, name):
        raise BuildError(
            f"invalid pack name {name!r}: up to 64 of a-z, 0-9, '-', '_', '.', starting a-z or 0-9"
        )


def check_writable(out_dir: Path) -> None:
    """Create ``out_dir`` if needed and prove a file can be written there, else :class:`OutputNotWritable`."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out_dir, prefix=".nightclerk-probe-"):
            pass
    except OSError as exc:
        raise OutputNotWritable(f"cannot write model packs to {out_dir}: {exc.strerror or exc}") from None


def write_tokenizer(src: Path, pack_dir: Path, max_tokens: int) -> Path:
    """Save the tokenizer with truncation at ``max_tokens`` and no padding, as the worker will use it."""
    target = pack_dir / TOKENIZER_FILE
    load_tokenizer(src, max_tokens).save(str(target))
    return target


class PackWriter:
    """``with PackWriter(out_dir, name) as pack: ...write files into pack.dir...; pack.commit(...)``."""

    def __init__(self, out_dir: Path, name: str) -> None:
        check_name(name)
        self.out_dir = out_dir
        self.name = name
        self.final = out_dir / name
        self.dir = out_dir / f".{name}.building-{uuid.uuid4().hex[:8]}"
        self.manifest: PackManifest | None = None

    def __enter__(self) -> PackWriter:
        check_writable(self.out_dir)
        self.dir.mkdir()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)  # gone after a commit; a failed build's leftovers
        if kind is None and self.manifest is None:
            raise BuildError(f"pack {self.name}: the build ended without committing")

    def commit(
        self,
        *,
        labels: list[str],
        max_tokens: int,
        inputs: list[str],
        variants: list[Variant],
        opset: int,
        source_checkpoint: str,
        method: str,
        data_sha256: str | None,
        metrics: dict[str, Any],
        task: Literal["classify", "summarize"] = "classify",
        generation: GenerationSpec | None = None,
        extractive: ExtractiveSpec | None = None,
    ) -> PackManifest:
        """Hash every file in the staging folder, write the manifest, move the pack into place."""
        files = {
            path.relative_to(self.dir).as_posix(): sha256_file(path)
            for path in sorted(self.dir.rglob("*"))
            if path.is_file() and path.name != MANIFEST_FILE
        }
        manifest = PackManifest(
            name=self.name,
            version=pack_version(files),
            task=task,
            labels=labels,
            max_tokens=max_tokens,
            inputs=inputs,
            variants=variants,
            opset=opset,
            source_checkpoint=source_checkpoint,
            data_sha256=data_sha256,
            method=method,
            files=files,
            metrics=metrics,
            generation=generation,
            extractive=extractive,
        )
        write_manifest(self.dir, manifest)
        self._publish()
        self.manifest = manifest
        return manifest

    def _publish(self) -> None:
        retired = self.out_dir / f".{self.name}.retired-{uuid.uuid4().hex[:8]}"
        if self.final.exists():
            self.final.rename(retired)
        self.dir.rename(self.final)
        shutil.rmtree(retired, ignore_errors=True)
