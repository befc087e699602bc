from __future__ import annotations

import json

import pytest

from nightclerk.cli.worker_process import nightclerk_env
from nightclerk.shared.settings import Settings


def test_non_string_settings_travel_as_json_and_read_back(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NIGHTCLERK_QUEUE", "the-callers-own")  # replaced, not merged
    env = nightclerk_env(
        {"classify_packs": {"repair_ticket": "ticket-system"}, "summarize_packs": {}, "top_k_labels": "3"},
        inherit=False,
    )
    assert json.loads(env["NIGHTCLERK_CLASSIFY_PACKS"]) == {"repair_ticket": "ticket-system"}
    assert env["NIGHTCLERK_TOP_K_LABELS"] == "3"
    assert "NIGHTCLERK_QUEUE" not in env
    for key, value in env.items():
        if key.startswith("NIGHTCLERK_"):
            monkeypatch.setenv(key, value)
    monkeypatch.delenv("NIGHTCLERK_QUEUE")
    settings = Settings()  # what the worker process reads from that environment
    assert settings.classify_packs == {"repair_ticket": "ticket-system"}
    assert settings.summarize_packs == {}
    assert settings.top_k_labels == 3


def test_by_default_the_callers_settings_stay_where_none_replaces_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NIGHTCLERK_TOP_K_LABELS", "4")
    monkeypatch.setenv("NIGHTCLERK_QUEUE", "the-callers-own")
    env = nightclerk_env({"queue": "the-benchmarks"})
    assert env["NIGHTCLERK_TOP_K_LABELS"] == "4" and env["NIGHTCLERK_QUEUE"] == "the-benchmarks"
