"""Which field of a source record becomes which part of a document.

A :class:`FieldMapping` comes from command-line options, a TOML file (``--mapping FILE.toml``) or a preset
shipped in ``producers/mappings/`` (``--mapping mtsamples``). The id is, in order of preference, the
``id_field`` column, the ``id_template`` rendered from the record, or a content hash of the text.

A field name may be a dotted path into nested JSON (``fields.summary`` in a Jira issue); a key that holds the
dots itself is found first.

``id_template`` names columns in braces, plus two record-derived fields:

* ``{_line}`` -- the line the record starts on in its file;
* ``{_seq}``  -- 1 for the first record whose other template fields render the same, 2 for the next, ...
  Stable across re-pushes of the same file, and across appends: only reordering rows that share all the
  other template fields changes it. Use it where identical rows are still distinct records.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from string import Formatter
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from nightclerk.shared.errors import InputError
from nightclerk.shared.settings import DocumentKind

PRESETS_DIR = Path(__file__).with_name("mappings")
LINE_FIELD = "_line"
SEQ_FIELD = "_seq"
RECORD_FIELDS = frozenset({LINE_FIELD, SEQ_FIELD})


def field_value(record: dict[str, Any], name: str) -> Any:
    """``record[name]``, else the value at the dotted path ``name`` through nested objects; None if absent."""
    if name in record:
        return record[name]
    value: Any = record
    for part in name.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def template_fields(template: str) -> list[str]:
    """The field names of an ``id_template``, in order; refuses format specs, conversions and indexing."""
    names: list[str] = []
    try:
        parsed = list(Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(f"id_template is not a valid template: {exc}") from None
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        if not name or spec or conversion or any(c in name for c in ".[]"):
            raise ValueError(f"id_template field {{{name}}} must be a plain column name")
        names.append(name)
    return names


class FieldMapping(BaseModel):
    """How records of one source become documents."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: DocumentKind | None = Field(default=None, description="the kind of every record")
    kind_field: str | None = Field(default=None, description="column holding each record's kind")
    source: str = Field(min_length=1, description="source-system name, the first part of the document id")
    id_field: str | None = None
    id_template: str | None = Field(default=None, description="e.g. '{Asset}-{BscStartDate}-{_seq}'")
    text_field: str = Field(min_length=1)
    more_text_fields: list[str] = Field(
        default_factory=list,
        description="fields appended to the text after a blank line each, when present (e.g. a ticket's "
        "description after its summary)",
    )
    title_field: str | None = Field(default=None, description="literature title; metadata 'title' otherwise")
    metadata_fields: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> FieldMapping:
        if (self.kind is None) == (self.kind_field is None):
            raise ValueError("give exactly one of kind and kind_field")
        if self.id_field and self.id_template:
            raise ValueError("give at most one of id_field and id_template")
        if self.id_template is not None:
            fields = template_fields(self.id_template)
            if not [name for name in fields if name != SEQ_FIELD]:
                raise ValueError("id_template needs at least one column or {_line}")
        return self

    def template_columns(self) -> list[str]:
        if self.id_template is None:
            return []
        return [name for name in template_fields(self.id_template) if name not in RECORD_FIELDS]

    def required_columns(self) -> list[str]:
        """Every column the mapping reads, in a stable order without repeats."""
        names = [self.text_field, self.id_field, self.kind_field, self.title_field]
        names += self.template_columns() + list(self.metadata_fields)
        return list(dict.fromkeys(name for name in names if name))

    def with_overrides(self, **changes: Any) -> FieldMapping:
        """A copy with the given non-None fields replaced (command-line options over a file or preset)."""
        data = self.model_dump()
        data.update({key: value for key, value in changes.items() if value is not None})
        if changes.get("kind") is not None:
            data["kind_field"] = None
        if changes.get("kind_field") is not None:
            data["kind"] = None
        if changes.get("id_field") is not None:
            data["id_template"] = None
        if changes.get("id_template") is not None:
            data["id_field"] = None
        return build_mapping(data, origin="the command-line options")


def build_mapping(data: dict[str, Any], *, origin: str) -> FieldMapping:
    try:
        return FieldMapping.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'mapping'}: {err['msg'].removeprefix('Value error, ')}"
            for err in exc.errors(include_input=False, include_url=False, include_context=False)
        )
        raise InputError(f"mapping from {origin} is invalid: {problems}") from None


def preset_names() -> list[str]:
    return sorted(item.stem for item in PRESETS_DIR.glob("*.toml"))


def load_preset(name: str) -> FieldMapping:
    resource = PRESETS_DIR / f"{name}.toml"
    if not name.isidentifier() or not resource.is_file():
        raise InputError(f"unknown mapping preset {name!r}; presets: {', '.join(preset_names())}")
    return _parse_toml(resource.read_text(encoding="utf-8"), origin=f"preset {name!r}")


def load_mapping_file(path: Path) -> FieldMapping:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read mapping file {path}: {type(exc).__name__}") from None
    return _parse_toml(text, origin=str(path))


def resolve_mapping(spec: str) -> FieldMapping:
    """``spec`` is a preset name or the path of a ``.toml`` mapping file."""
    path = Path(spec)
    if spec.endswith(".toml") or path.is_file():
        if not path.is_file():
            raise InputError(f"mapping file {path} does not exist")
        return load_mapping_file(path)
    return load_preset(spec)


def _parse_toml(text: str, *, origin: str) -> FieldMapping:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"mapping {origin} is not valid TOML: {exc}") from None
    return build_mapping(data, origin=origin)
