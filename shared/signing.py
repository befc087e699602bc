"""Signed queue messages: HMAC-SHA256 over a chunk's canonical JSON, with a key producers and workers share.

Anyone who can write to Redis can put a message on the queue. With ``NIGHTCLERK_MESSAGE_SIGNING_KEY`` set,
producers sign every chunk and workers refuse one whose signature is missing or does not match -- a
foreign sender's documents, or a signed chunk changed on the way, never reach the store. The signature
covers the whole message (ids, text, tasks, push time); replaying a signed chunk is harmless, as the store
keeps one result per document. The standard library's ``hmac`` is all this needs.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from pydantic import SecretStr

from nightclerk.shared.errors import MessageRefused

SCHEME = "hmac-sha256:"


def canonical(message: dict[str, Any]) -> bytes:
    """The message as JSON with sorted keys: the same bytes on both sides of the queue."""
    return json.dumps(message, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def sign(key: SecretStr, message: dict[str, Any]) -> str:
    digest = hmac.new(key.get_secret_value().encode("utf-8"), canonical(message), hashlib.sha256)
    return SCHEME + digest.hexdigest()


def verify(key: SecretStr, message: dict[str, Any], signature: object) -> None:
    """Raise :class:`MessageRefused` unless ``signature`` is this key's signature of ``message``."""
    if not isinstance(signature, str) or not signature:
        raise MessageRefused("unsigned")
    if not hmac.compare_digest(signature.encode("ascii", "replace"), sign(key, message).encode("ascii")):
        raise MessageRefused("bad signature")
