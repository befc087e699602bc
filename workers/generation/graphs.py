"""One ONNX Runtime session per generation graph, run so that the key/value cache stays where it is made.

On the CPU a run takes and returns numpy arrays. On CUDA a run goes through IO binding: the cache tensors a
graph returns stay on the GPU as ``OrtValue``s and are bound as the next step's inputs without a round trip
through host memory; only the logits (and small masks and ids) cross the bus. Rows of a cache on the GPU
are picked (beam reordering, dropping finished rows) by a one-node ``Gather`` graph run on the same device,
since the worker has no torch to index device memory with.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from nightclerk.shared.errors import InferenceError
from nightclerk.workers.classifier import session_options
from nightclerk.workers.device import Placement

Tensor = Any  # np.ndarray on the CPU, ort.OrtValue on CUDA

_NUMPY_TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(int64)": np.int64}


class GraphRunner:
    """A session with its input/output names, dtypes and static shapes, and one ``run`` for both devices."""

    def __init__(self, path: Path, placement: Placement, *, threads: int = 0) -> None:
        self.name = path.stem
        self.session = ort.InferenceSession(
            str(path), sess_options=session_options(placement, threads), providers=placement.providers
        )
        self.on_device = placement.device == "cuda"
        self.device_id = _device_id(placement)
        self.inputs = [node.name for node in self.session.get_inputs()]
        self.outputs = [node.name for node in self.session.get_outputs()]
        self.dtypes = {
            node.name: _NUMPY_TYPES.get(node.type, np.float32) for node in self.session.get_inputs()
        }
        self.shapes = {node.name: list(node.shape) for node in self.session.get_inputs()}

    def run(self, feeds: Mapping[str, Tensor], host_outputs: Sequence[str]) -> dict[str, Tensor]:
        """Run the graph; ``host_outputs`` come back as numpy arrays, the rest stay where they were made."""
        try:
            if not self.on_device:
                values = self.session.run(None, dict(feeds))
                return dict(zip(self.outputs, values, strict=True))
            binding = self.session.io_binding()
            for name, value in feeds.items():
                if isinstance(value, ort.OrtValue):
                    binding.bind_ortvalue_input(name, value)
                else:
                    binding.bind_cpu_input(name, np.ascontiguousarray(value))
            for name in self.outputs:
                if name in host_outputs:
                    binding.bind_output(name, "cpu")
                else:
                    binding.bind_output(name, "cuda", self.device_id)
            self.session.run_with_iobinding(binding)
            out = binding.get_outputs()
            return {
                name: value.numpy() if name in host_outputs else value
                for name, value in zip(self.outputs, out, strict=True)
            }
        except InferenceError:
            raise
        except Exception as exc:  # onnxruntime raises its own types; never echo inputs (they are text)
            raise InferenceError(f"generation graph {self.name} failed: {type(exc).__name__}") from None

    def empty_cache(self, name: str, rows: int) -> np.ndarray:
        """A zero-length past for input ``name``: (rows, heads, 0, head_dim) in the graph's dtype."""
        shape = self.shapes[name]
        heads, head_dim = shape[1], shape[3]
        if not isinstance(heads, int) or not isinstance(head_dim, int):
            raise InferenceError(f"graph {self.name}: input {name} has no static heads/head_dim ({shape})")
        return np.zeros((rows, heads, 0, head_dim), dtype=self.dtypes[name])


class RowPicker:
    """``take(tensors, rows)``: the given rows (axis 0) of each tensor, on the device the tensors are on."""

    def __init__(self, placement: Placement) -> None:
        self.on_device = placement.device == "cuda"
        self.device_id = _device_id(placement)
        self._placement = placement
        self._gathers: dict[int, ort.InferenceSession] = {}

    def take(self, tensors: Sequence[Tensor], rows: np.ndarray) -> list[Tensor]:
        rows = np.asarray(rows, dtype=np.int64)
        if not self.on_device:
            return [np.take(tensor, rows, axis=0) for tensor in tensors]
        return [self._take_on_device(tensor, rows) for tensor in tensors]

    def _take_on_device(self, tensor: ort.OrtValue, rows: np.ndarray) -> ort.OrtValue:
        elem = tensor.element_type()
        session = self._gathers.get(elem)
        if session is None:
            session = self._gathers[elem] = ort.InferenceSession(
                _gather_model(elem), providers=self._placement.providers
            )
        binding = session.io_binding()
        binding.bind_ortvalue_input("data", tensor)
        binding.bind_cpu_input("rows", rows)
        binding.bind_output("picked", "cuda", self.device_id)
        session.run_with_iobinding(binding)
        picked: ort.OrtValue = binding.get_outputs()[0]
        return picked


def _gather_model(elem_type: int) -> bytes:
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Gather", ["data", "rows"], ["picked"], axis=0)],
        "pick_rows",
        [helper.make_tensor_value_info("data", elem_type, None),
         helper.make_tensor_value_info("rows", TensorProto.INT64, ["n"])],
        [helper.make_tensor_value_info("picked", elem_type, None)],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    data: bytes = model.SerializeToString()
    return data


def _device_id(placement: Placement) -> int:
    first = placement.providers[0]
    if isinstance(first, tuple) and isinstance(first[1], dict):
        return int(first[1].get("device_id", 0))
    return 0
