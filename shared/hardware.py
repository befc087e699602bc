"""What this machine has: GPUs counted without initialising CUDA, CPU cores this process may use.

The GPU count is read from ``/proc/driver/nvidia/gpus`` rather than by asking CUDA: initialising CUDA in a
process that later forks breaks the child, and onnxruntime-gpu logs an error when CUDA is requested on a
machine that has none -- so callers request CUDA only when this says a GPU is there.
"""

from __future__ import annotations

import os
from pathlib import Path

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
