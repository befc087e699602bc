"""Where a build runs: CUDA for torch and ONNX Runtime only when a GPU is there, the CPU otherwise.

The GPU check is ``nightclerk.shared.hardware.gpu_count`` (no CUDA initialisation), the one workers use.
"""

from __future__ import annotations

from nightclerk.shared.hardware import cpu_count, gpu_count

CPU_PROVIDERS: list[str] = ["CPUExecutionProvider"]
__all__ = [
    "CPU_PROVIDERS",
    "cpu_count",
    "cuda_providers",
    "describe_torch_device",
    "gpu_count",
    "torch_device",
]


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
