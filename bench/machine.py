"""What the figures were measured on: CPU model and features, cores, memory, GPU, library versions."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import onnxruntime as ort
import redis

from nightclerk.workers.device import cpu_count

_FEATURES = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_tile")


def _cpu() -> tuple[str, list[str]]:
    model, flags = platform.processor() or "unknown", []
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                model = value.strip()
            elif key.strip() == "flags":
                flags = [flag for flag in _FEATURES if flag in value.split()]
                break
    except OSError:
        pass
    return model, flags


def _memory_gib() -> float | None:
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):
        return None
    return round(pages / 2**30, 1)


def gpu_names() -> list[str]:
    """GPU names from nvidia-smi; empty where there is none."""
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in out.splitlines() if line.strip()]


def _version(package: str) -> str | None:
    try:
        return version(package)
    except PackageNotFoundError:
        return None


def describe(redis_url: str) -> dict[str, Any]:
    model, flags = _cpu()
    try:
        redis_version = redis.Redis.from_url(redis_url).info("server").get("redis_version")
    except redis.RedisError:
        redis_version = None
    return {
        "cpu": model,
        "cpu_features": flags,
        "cores": cpu_count(),
        "memory_gib": _memory_gib(),
        "gpus": gpu_names(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "onnxruntime": ort.__version__,
        "providers": ort.get_available_providers(),
        "redis": redis_version,
        "versions": {
            name: _version(name) for name in ("celery", "torch", "transformers", "ray", "tokenizers")
        },
    }


def one_line(machine: dict[str, Any]) -> str:
    features = "/".join(machine["cpu_features"]) or "no AVX2"
    gpus = ", ".join(machine["gpus"]) or "no GPU"
    return (
        f"{machine['cores']} cores of {machine['cpu']} ({features}), {machine['memory_gib']} GiB, {gpus}; "
        f"Python {machine['python']}, ONNX Runtime {machine['onnxruntime']}, Redis {machine['redis']}"
    )
