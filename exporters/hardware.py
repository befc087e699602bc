"""Where a build runs: CUDA for torch and ONNX Runtime only when a GPU is there, the CPU otherwise.

The GPU count is read from ``/proc/driver/nvidia/gpus`` (the same check as ``nightclerk.workers.device``,
which exporters may not import): onnxruntime-gpu logs an error when CUDA is requested on a machine without
one, and asking torch first would initialise CUDA for nothing.
"""

from __future__ import annotations

import os
from pathlib import Path

_NVIDIA_GPUS = Path("/proc/driver/nvidia/gpus")
CPU_PROVIDERS: list[str] = ["CPUExecutionProvider"]


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


def torch_device() -> str:
    """``"cuda"`` when a GPU is visible and this torch build can use it, else ``"cpu"``."""
    if gpu_count() == 0:
        return "cpu"
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def cuda_providers() -> list[str] | None:
    """ONNX Runtime providers for a CUDA session, or ``None`` without a GPU or the CUDA provider."""
    if gpu_count() == 0:
        return None
    import onnxruntime as ort

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        return None
    return ["CUDAExecutionProvider", "CPUExecutionProvider"]


def describe_torch_device(device: str) -> str:
    if device != "cuda":
        return f"cpu ({cpu_count()} cores)"
    import torch

    return f"cuda ({torch.cuda.get_device_name(0)})"
