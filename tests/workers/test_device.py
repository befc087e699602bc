from __future__ import annotations

import pytest

from nightclerk.shared.errors import ConfigError
from nightclerk.workers import device


def test_cpu_when_no_gpu_even_if_the_cuda_provider_is_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(device, "gpu_count", lambda: 0)
    placement = device.choose_placement("auto", ["CUDAExecutionProvider", "CPUExecutionProvider"])
    assert placement.device == "cpu"
    assert placement.providers == ["CPUExecutionProvider"]
    with pytest.raises(ConfigError, match="no NVIDIA GPU"):
        device.choose_placement("cuda", ["CUDAExecutionProvider", "CPUExecutionProvider"])


def test_cuda_when_a_gpu_and_the_provider_are_there(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(device, "gpu_count", lambda: 1)
    placement = device.choose_placement(
        "auto", ["CUDAExecutionProvider", "CPUExecutionProvider"], device_id=0
    )
    assert placement.device == "cuda"
    assert placement.provider_name == "CUDAExecutionProvider"
    assert device.choose_placement("cpu", ["CUDAExecutionProvider"]).device == "cpu"


def test_hidden_gpus_count_as_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert device.gpu_count() == 0
