"""Which execution provider to use, decided without initialising CUDA (see ``nightclerk.shared.hardware``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nightclerk.shared.errors import ConfigError
from nightclerk.shared.hardware import cpu_count, gpu_count

__all__ = ["Placement", "choose_placement", "cpu_count", "gpu_count"]


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
