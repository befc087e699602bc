"""Which execution provider to use, decided without initialising CUDA.

The GPU count is read from ``/proc/driver/nvidia/gpus`` rather than by asking CUDA: initialising CUDA in a
process that later forks breaks the child, and onnxruntime-gpu logs an error when CUDA is requested on a
machine that has none -- so CUDA is requested only when a GPU is there.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nightclerk.shared.errors import ConfigError

_NVIDIA_GPUS = Path("/proc/driver/nvidia/gpus")


def gpu_count() -> int:
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return 0
    try:
        return sum(1 for _ in _NVIDIA_GPUS.iterdir())
    except OSError:
        return 0


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


@dataclass(frozen=True)
class Placement:
    device: str  # "cuda" or "cpu"
    providers: list[Any]

    @property
    def provider_name(self) -> str:
        first = self.providers[0]
        return str(first[0] if isinstance(first, tuple) else first)


def choose_placement(requested: str, available_providers: list[str], device_id: int = 0) -> Placement:
    """CUDA when asked for (or ``auto``) and both a GPU and the CUDA provider exist; the CPU otherwise."""
    cuda_ready = "CUDAExecutionProvider" in available_providers and gpu_count() > 0
    if requested == "cuda" and not cuda_ready:
        raise ConfigError(
            "device=cuda but no usable GPU: "
            + ("no NVIDIA GPU is visible" if gpu_count() == 0 else "onnxruntime has no CUDAExecutionProvider")
        )
    if requested in ("cuda", "auto") and cuda_ready:
        cuda = ("CUDAExecutionProvider", {"device_id": device_id})
        return Placement("cuda", [cuda, "CPUExecutionProvider"])
    return Placement("cpu", ["CPUExecutionProvider"])
