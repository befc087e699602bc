"""Errors raised while building a model pack, rooted in :mod:`nightclerk.shared.errors`.

    NightclerkError
    ├── InputError
    │   └── TrainingDataError        the labelled data cannot train a pack (raised before any long work)
    │       ├── DataNotFound         a data file or wheel is missing
    │       ├── MissingColumnError   the text or label column is not in the file
    │       ├── SingleClassError     fewer than two labels are left to learn
    │       └── TooFewExamplesError  too few rows overall or per label to train and evaluate
    └── PackError
        └── BuildError               a pack could not be built; nothing was written to the packs folder
            ├── OutputNotWritable
            ├── CheckpointNotFound   the base checkpoint (or a file it needs) is not there
            ├── CheckpointInvalid    the base checkpoint is there but unreadable or not BERT-family
            ├── ExportError          torch -> ONNX export, fusion or quantization failed
            │   └── FusionError      the optimizer fused fewer attention/layer-norm blocks than expected
            └── ParityError          an exported variant disagrees with its source beyond a gate
                ├── AtolError            max |logit difference| above the tolerance
                ├── LabelAgreementError  share of identical top labels below the minimum
                └── MacroF1DropError     a variant's macro-F1 falls too far below fp32's

Messages carry paths, counts and figures -- never document text.
"""

from __future__ import annotations

from nightclerk.shared.errors import InputError, PackError


class TrainingDataError(InputError):
    """The labelled data cannot train a pack."""


class DataNotFound(TrainingDataError):
    """A data file (or the wheel it is extracted from) is not where it was looked for."""


class MissingColumnError(TrainingDataError):
    """The text or label column is not in the file."""


class SingleClassError(TrainingDataError):
    """Fewer than two labels are left after deduplication and label selection."""


class TooFewExamplesError(TrainingDataError):
    """Too few rows overall, or per label, to train and evaluate."""


class BuildError(PackError):
    """A pack could not be built; the packs folder was left as it was."""


class OutputNotWritable(BuildError):
    """The packs folder cannot be created or written."""


class CheckpointNotFound(BuildError):
    """The source checkpoint (weights + tokenizer) is not installed."""


class CheckpointInvalid(BuildError):
    """The base checkpoint is present but cannot serve: corrupt weights, bad config, unreadable tokenizer."""


class ExportError(BuildError):
    """Exporting, fusing or quantizing the model failed."""


class FusionError(ExportError):
    """The transformer optimizer fused fewer blocks than the model has layers."""


class ParityError(BuildError):
    """An exported variant disagrees with its source beyond a gate."""

    def __init__(self, gate: str, value: float, limit: float, detail: str) -> None:
        self.gate = gate
        self.value = value
        self.limit = limit
        super().__init__(f"parity gate {gate!r} failed: {detail}")


class AtolError(ParityError):
    """The maximum absolute logit difference is above the tolerance."""


class LabelAgreementError(ParityError):
    """The share of documents whose top label matches is below the minimum."""


class MacroF1DropError(ParityError):
    """A quantized variant's macro-F1 on the eval split is more than the allowed drop below fp32's."""
