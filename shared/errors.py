"""One exception root for nightclerk.

Messages carry ids, counts, paths and reasons -- never document text (PHI).

    NightclerkError
    ├── ConfigError
    ├── BrokerUnavailable
    ├── InputError                 a whole input file cannot be read (empty, wrong columns, unknown mapping)
    ├── PackError
    │   ├── PackNotFound
    │   ├── PackInvalid            manifest missing or malformed
    │   └── PackIntegrityError     a file's sha256 differs from the manifest
    ├── StoreError
    │   └── StoreUnavailable       the database cannot be reached (transient: retry)
    ├── FeedUnavailable            the change feed's Redis cannot be reached (transient: retry)
    ├── MessageRefused             a queue message is not signed with the configured key
    └── InferenceError
"""

from __future__ import annotations

import traceback
from pathlib import Path


class NightclerkError(Exception):
    """Root of every error nightclerk raises on purpose."""


class ConfigError(NightclerkError):
    """Settings or options that cannot work together."""


class BrokerUnavailable(NightclerkError):
    """No Redis answers at the configured URL."""


class InputError(NightclerkError):
    """An input file as a whole cannot be used; no record of it was enqueued."""


class PackError(NightclerkError):
    """A model pack cannot be used."""


class PackNotFound(PackError):
    """No pack of that name in the packs folder."""


class PackInvalid(PackError):
    """The pack's manifest is missing or does not validate."""


class PackIntegrityError(PackError):
    """A pack file is missing or its sha256 differs from the manifest: the pack was tampered with."""


class StoreError(NightclerkError):
    """The result store refused an operation."""


class StoreUnavailable(StoreError):
    """The result store cannot be reached right now; the operation may succeed on retry."""


class FeedUnavailable(NightclerkError):
    """The change feed's Redis cannot be reached right now; announcing may succeed on retry."""


class MessageRefused(NightclerkError):
    """A queue message without a valid signature: not from a producer that holds the signing key."""


class InferenceError(NightclerkError):
    """The inference runtime failed on a batch."""


def describe(exc: BaseException) -> str:
    """An exception for a log line or a dead letter: its type and where it was raised.

    nightclerk's own messages are written without document text, so they are kept; any other exception's
    message may quote its input (a tokenizer's, a driver's), so only its type and place are given.
    """
    if isinstance(exc, NightclerkError):
        return f"{type(exc).__name__}: {exc}"
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" at {Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else ""
    return f"{type(exc).__name__}{where}"
