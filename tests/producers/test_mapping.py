from __future__ import annotations

from pathlib import Path

import pytest

from nightclerk.producers.mapping import (
    FieldMapping,
    build_mapping,
    load_mapping_file,
    load_preset,
    preset_names,
    resolve_mapping,
    template_fields,
)
from nightclerk.shared.errors import InputError


def test_presets_ship_with_the_package() -> None:
    assert {"mtsamples", "nestor"} <= set(preset_names())


def test_mtsamples_preset() -> None:
    mapping = load_preset("mtsamples")
    assert mapping.kind == "ehr_note"
    assert mapping.source == "mtsamples"
    assert mapping.id_field == "note_id"
    assert mapping.text_field == "transcription"
    assert mapping.metadata_fields == ["specialty", "sample_name"]
    assert mapping.required_columns() == ["transcription", "note_id", "specialty", "sample_name"]


def test_nestor_preset_derives_the_id_from_the_row() -> None:
    mapping = load_preset("nestor")
    assert mapping.kind == "repair_ticket"
    assert mapping.id_field is None
    assert mapping.id_template == "{Asset}-{BscStartDate}-{_seq}"
    assert mapping.text_field == "OriginalShorttext"
    assert mapping.metadata_fields == ["Asset", "BscStartDate", "PMType", "MajorSystem"]
    assert mapping.template_columns() == ["Asset", "BscStartDate"]


def test_unknown_preset_is_an_input_error_naming_the_presets() -> None:
    with pytest.raises(InputError, match=r"unknown mapping preset 'nope'.*mtsamples"):
        load_preset("nope")
    with pytest.raises(InputError, match="unknown mapping preset"):
        resolve_mapping("no-such-preset")


def test_mapping_file(tmp_path: Path) -> None:
    path = tmp_path / "tickets.toml"
    path.write_text('kind_field = "type"\nsource = "jira"\nid_field = "key"\ntext_field = "body"\n')
    mapping = resolve_mapping(str(path))
    assert mapping == load_mapping_file(path)
    assert mapping.kind is None and mapping.kind_field == "type"
    assert mapping.required_columns() == ["body", "key", "type"]


def test_bad_mapping_files(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        resolve_mapping(str(tmp_path / "missing.toml"))
    broken = tmp_path / "broken.toml"
    broken.write_text("kind = \n")
    with pytest.raises(InputError, match="not valid TOML"):
        resolve_mapping(str(broken))
    wrong = tmp_path / "wrong.toml"
    wrong.write_text('kind = "memo"\nsource = "x"\ntext_field = "t"\ncolour = "red"\n')
    with pytest.raises(InputError, match=r"kind: .*colour: Extra inputs"):
        resolve_mapping(str(wrong))


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ({"source": "s", "text_field": "t"}, "exactly one of kind and kind_field"),
        ({"kind": "ehr_note", "kind_field": "k", "source": "s", "text_field": "t"}, "exactly one"),
        (
            {"kind": "ehr_note", "source": "s", "text_field": "t", "id_field": "i", "id_template": "{a}"},
            "at most one of id_field and id_template",
        ),
        (
            {"kind": "ehr_note", "source": "s", "text_field": "t", "id_template": "{_seq}"},
            "at least one column",
        ),
        ({"kind": "ehr_note", "source": "s", "text_field": "t", "id_template": "{a!r}"}, "plain column name"),
        ({"kind": "ehr_note", "source": "s", "text_field": "t", "id_template": "{a"}, "not a valid template"),
    ],
)
def test_inconsistent_mappings_are_refused(data: dict[str, str], problem: str) -> None:
    with pytest.raises(InputError, match=problem):
        build_mapping(data, origin="test")


def test_template_fields() -> None:
    assert template_fields("{Asset}-{Start Date}-{_seq}") == ["Asset", "Start Date", "_seq"]
    assert template_fields("plain") == []


def test_options_override_a_preset() -> None:
    mapping = load_preset("mtsamples").with_overrides(
        source="epic", id_field=None, text_field="description", metadata_fields=["specialty"]
    )
    assert (mapping.source, mapping.id_field, mapping.text_field) == ("epic", "note_id", "description")
    assert mapping.metadata_fields == ["specialty"]
    switched = load_preset("nestor").with_overrides(kind_field="type", id_field="WO")
    assert switched.kind is None and switched.kind_field == "type"
    assert switched.id_field == "WO" and switched.id_template is None
    assert isinstance(switched, FieldMapping)
