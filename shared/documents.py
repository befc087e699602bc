"""Document models: a discriminated union on ``kind``.

The document id is stable across re-pushes of the same source record: ``{source}:{source_id}`` when the
source system gives an id, ``{source}:sha256:{first 24 hex of the text's sha256}`` when it does not.
"""

from __future__ import annotations

import hashlib
import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator, model_validator

_ID_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-/#@+]{0,199}$")
# Lone surrogates: undecodable input bytes under errors="surrogateescape", or unpaired JSON \u escapes.
_SURROGATE = re.compile("[\ud800-\udfff]")


def has_lone_surrogate(value: str) -> bool:
    """True when ``value`` cannot be encoded as UTF-8 (bytes that did not decode, or unpaired escapes)."""
    return _SURROGATE.search(value) is not None


def content_id(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]


def _check_part(value: str, what: str) -> str:
    value = value.strip()
    if not _ID_PART.match(value):
        raise ValueError(
            f"{what} must be 1-200 characters of letters, digits and ._-/#@+, starting with a letter or digit"
        )
    return value


class _DocumentBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    source: str = Field(description="source system, e.g. mtsamples, nestor, epic-prod")
    source_id: str | None = Field(default=None, description="the record's id in its source system")
    text: str = Field(min_length=1, description="the document text (PHI for clinical notes)")
    metadata: dict[str, str] = Field(default_factory=dict)
    id: str = Field(default="", description="derived; any value given is replaced")

    @field_validator("source")
    @classmethod
    def _source(cls, value: str) -> str:
        return _check_part(value, "source")

    @field_validator("source_id")
    @classmethod
    def _source_id(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        return _check_part(value, "source_id")

    @field_validator("text")
    @classmethod
    def _text(cls, value: str) -> str:
        if _SURROGATE.search(value):
            raise ValueError("text is not valid UTF-8")
        if not value.strip():
            raise ValueError("text is empty")
        return value

    @field_validator("metadata")
    @classmethod
    def _metadata(cls, value: dict[str, str]) -> dict[str, str]:
        for key, item in value.items():
            if _SURROGATE.search(key) or _SURROGATE.search(item):
                raise ValueError(
                    f"metadata field {key!r} is not valid UTF-8"
                    if not _SURROGATE.search(key)
                    else "a metadata field name is not valid UTF-8"
                )
        return value

    @model_validator(mode="after")
    def _derive_id(self) -> _DocumentBase:
        local = self.source_id if self.source_id is not None else content_id(self.text)
        object.__setattr__(self, "id", f"{self.source}:{local}")
        return self


class EhrNote(_DocumentBase):
    kind: Literal["ehr_note"] = "ehr_note"


class RepairTicket(_DocumentBase):
    kind: Literal["repair_ticket"] = "repair_ticket"


class Literature(_DocumentBase):
    kind: Literal["literature"] = "literature"
    title: str | None = None


Document = Annotated[EhrNote | RepairTicket | Literature, Field(discriminator="kind")]
DOCUMENT_ADAPTER: TypeAdapter[EhrNote | RepairTicket | Literature] = TypeAdapter(
    Document, config=ConfigDict(hide_input_in_errors=True)
)
KINDS: tuple[str, ...] = ("ehr_note", "repair_ticket", "literature")
