"""Signed chunk messages: the producer's signature is the worker's, and any change breaks it."""

from __future__ import annotations

import json

import pytest
from pydantic import SecretStr

from nightclerk.shared.documents import EhrNote
from nightclerk.shared.errors import MessageRefused
from nightclerk.shared.messages import ChunkMessage
from nightclerk.shared.signing import sign, verify

KEY = SecretStr("a shared secret")


def _message() -> dict[str, object]:
    note = EhrNote(source="epic", source_id="n1", text="chest pain, émigré, 痛み")
    return ChunkMessage(tasks=["classify"], documents=[note]).model_dump(mode="json")


def test_a_message_verifies_after_a_json_round_trip() -> None:
    message = _message()
    signature = sign(KEY, message)
    assert signature.startswith("hmac-sha256:")
    received = json.loads(json.dumps(message))  # what the worker gets from kombu
    verify(KEY, received, signature)


@pytest.mark.parametrize(
    ("signature", "reason"),
    [(None, "unsigned"), ("", "unsigned"), (42, "unsigned"), ("hmac-sha256:00", "bad signature")],
)
def test_a_missing_or_foreign_signature_is_refused(signature: object, reason: str) -> None:
    with pytest.raises(MessageRefused, match=reason):
        verify(KEY, _message(), signature)


def test_a_changed_message_or_another_key_is_refused() -> None:
    message = _message()
    signature = sign(KEY, message)
    changed = json.loads(json.dumps(message))
    changed["documents"][0]["text"] = "chest pain, émigré, 痛み!"
    with pytest.raises(MessageRefused, match="bad signature"):
        verify(KEY, changed, signature)
    with pytest.raises(MessageRefused, match="bad signature"):
        verify(SecretStr("another key"), message, signature)
