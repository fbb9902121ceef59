"""The model object: a parsed, checked graph whose operators hold packed
weights, run in the file's order on NumPy arrays."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._ops import OPS, Op
from ._schema import Graph, ModelError, TensorSpec, UnsupportedOpError, parse

__all__ = ["Model", "OpTiming", "TensorInfo", "load"]


@dataclass(frozen=True)
class TensorInfo:
    """A graph input or output as the caller sees it (the model's own dtype)."""

    name: str
    shape: tuple[int, ...]
    dtype: np.dtype
    scale: float | None
    zero_point: int | None
    index: int


@dataclass(frozen=True)
class OpTiming:
    index: int
    op: str
    shapes: str
    seconds: float


def _info(t: TensorSpec) -> TensorInfo:
    scale = float(t.scale[0]) if t.scale is not None and t.scale.size == 1 else None
    zp = int(t.zero_point[0]) if t.zero_point is not None and t.zero_point.size == 1 else None
    return TensorInfo(t.name, tuple(t.shape), t.dtype, scale, zp, t.index)


def _to_u8(arr: np.ndarray) -> np.ndarray:
    return arr.view(np.uint8) ^ np.uint8(0x80) if arr.dtype == np.int8 else arr


class Model:
    """A TensorFlow Lite model ready to run on lowp's kernels.

    Build it with :func:`load`. Call it with one NumPy array per input (the
    model's dtype and shape): ``model(x)`` returns the output array, or a
    tuple when the model has several outputs. The operators keep their
    output arrays between runs (what is returned is a copy), so one Model
    runs one call at a time: give each thread its own.
    """

    def __init__(self, graph: Graph):
        self.graph = graph
        unsupported = sorted({s.name for s in graph.ops if s.name not in OPS})
        if unsupported:
            raise UnsupportedOpError(
                f"model: lowp does not support the operator(s) {', '.join(unsupported)} "
                f"(supported: {', '.join(sorted(OPS))})"
            )
        for i in graph.inputs:
            t = graph.tensors[i]
            if t.data is not None:
                raise ModelError(f"model: graph input {t.describe()} is a constant")
            if t.dtype == np.void:
                raise UnsupportedOpError(
                    f"model: graph input {t.describe()} has an unsupported type"
                )
        self.ops: list[Op] = [OPS[s.name](graph, s) for s in graph.ops]
        self._constants: dict[int, np.ndarray] = {}
        for t in graph.tensors:
            if t.data is not None:
                self._constants[t.index] = _to_u8(t.data) if t.quantized else t.data
        # every op reads only constants, graph inputs and earlier ops' outputs
        ready = set(self._constants) | set(graph.inputs)
        for op in self.ops:
            for i in op.inputs:
                if i >= 0 and i not in ready:
                    raise ModelError(
                        f"{op.what}: reads {graph.tensors[i].describe()} before anything writes it"
                    )
            ready.update(op.outputs)
        for i in graph.outputs:
            if i not in ready:
                raise ModelError(
                    f"model: graph output {graph.tensors[i].describe()} is never written"
                )
        self.inputs = [_info(graph.tensors[i]) for i in graph.inputs]
        self.outputs = [_info(graph.tensors[i]) for i in graph.outputs]

    def __repr__(self) -> str:
        def fmt(infos: list[TensorInfo]) -> str:
            return ", ".join(f"{t.dtype}{list(t.shape)}" for t in infos)

        return (
            f"Model({len(self.ops)} ops, inputs [{fmt(self.inputs)}], "
            f"outputs [{fmt(self.outputs)}])"
        )

    def _start(self, arrays: tuple[Any, ...]) -> list[Any]:
        if len(arrays) != len(self.inputs):
            raise TypeError(f"the model takes {len(self.inputs)} input(s), got {len(arrays)}")
        values: list[Any] = [None] * len(self.graph.tensors)
        for i, arr in self._constants.items():
            values[i] = arr
        for pos, (info, arr) in enumerate(zip(self.inputs, arrays)):
            x = np.asarray(arr)
            name = f"input {pos} ({info.name!r})"
            if x.dtype != info.dtype:
                raise TypeError(f"{name} must be {info.dtype}, got dtype {x.dtype}")
            if x.shape != info.shape:
                raise ValueError(f"{name} must have shape {info.shape}, got {x.shape}")
            x = np.ascontiguousarray(x)
            values[info.index] = _to_u8(x) if info.scale is not None else x
        return values

    def _finish(self, values: list[Any], indices: list[int]) -> list[np.ndarray]:
        result = []
        for i in indices:
            t = self.graph.tensors[i]
            arr = values[i]
            if t.dtype == np.int8:
                arr = (arr ^ np.uint8(0x80)).view(np.int8)
            result.append(np.array(arr, dtype=t.dtype, copy=True))
        return result

    def run(self, *inputs: Any) -> list[np.ndarray]:
        """Run the model; a list with one array per output."""
        values = self._start(inputs)
        for op in self.ops:
            op.run(values)
        return self._finish(values, self.graph.outputs)

    def __call__(self, *inputs: Any):
        out = self.run(*inputs)
        return out[0] if len(out) == 1 else tuple(out)

    def profile(self, *inputs: Any) -> tuple[list[np.ndarray], list[OpTiming]]:
        """Run once, timing every operator: (outputs, timings)."""
        values = self._start(inputs)
        timings = []
        for op in self.ops:
            t0 = time.perf_counter()
            op.run(values)
            timings.append(
                OpTiming(
                    op.spec.index, op.spec.name, op.describe_shapes(), time.perf_counter() - t0
                )
            )
        return self._finish(values, self.graph.outputs), timings

    def trace(self, *inputs: Any) -> dict[int, np.ndarray]:
        """Run once and return every operator's outputs by tensor index (the
        model's dtypes), for comparing layer by layer."""
        values = self._start(inputs)
        out: dict[int, np.ndarray] = {}
        for op in self.ops:
            op.run(values)
            for i, arr in zip(op.outputs, self._finish(values, op.outputs)):
                out[i] = arr
        return out

    def random_inputs(self, seed: int = 0) -> list[np.ndarray]:
        """Deterministic inputs covering each input type's whole range."""
        rng = np.random.default_rng(seed)
        arrays = []
        for info in self.inputs:
            if info.dtype == np.float32:
                arrays.append(rng.standard_normal(info.shape).astype(np.float32))
            else:
                lim = np.iinfo(info.dtype)
                arr = rng.integers(lim.min, int(lim.max) + 1, info.shape, dtype=info.dtype)
                flat = arr.reshape(-1)
                if flat.size >= 2:  # both ends of the range, always
                    flat[0], flat[-1] = lim.min, lim.max
                arrays.append(arr)
        return arrays


def load(model: str | os.PathLike[str] | bytes | bytearray | memoryview) -> Model:
    """Load a .tflite model (a path or the file's bytes), check it and pack
    its weights. Raises ModelError (a ValueError) for a malformed file and
    UnsupportedOpError (a ModelError) naming any operator lowp does not run."""
    if isinstance(model, (bytes, bytearray, memoryview)):
        data = bytes(model)
    elif isinstance(model, (str, os.PathLike)):
        with open(model, "rb") as f:
            data = f.read()
    else:
        raise TypeError(f"model must be a path or bytes, got {type(model).__name__}")
    return Model(parse(data))
