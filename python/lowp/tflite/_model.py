"""The model object: a parsed, checked .tflite graph lowered into lowp's
integer graph (:mod:`lowp.graph`) and run by its native runtime."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from lowp.graph import Graph as IntGraph
from lowp.graph import GraphError, Runtime, Tensor, TensorInfo

from ._ops import OPS, Op, _to_u8
from ._schema import (
    Graph,
    ModelError,
    TensorSpec,
    UnsupportedOpError,
    check_memory_limit,
    parse,
)

__all__ = ["Model", "OpTiming", "TensorInfo", "load"]


@dataclass(frozen=True)
class OpTiming:
    index: int
    op: str
    shapes: str
    seconds: float


def _tensor(t: TensorSpec) -> Tensor:
    """A TFLite tensor as an integer-graph tensor: every int8 tensor, quantized
    or not, is held in the uint8 domain (its io_dtype maps it back at the
    graph's edges)."""
    eight_bit = t.dtype in (np.int8, np.uint8)
    scale = zp = None
    if eight_bit and t.quantized and t.scale is not None and t.scale.size == 1:
        scale = float(t.scale[0])
        zp = int(t.zero_point[0]) + (128 if t.dtype == np.int8 else 0)  # type: ignore[index]
    data = None
    if t.data is not None:
        data = np.ascontiguousarray(_to_u8(t.data))
    return Tensor(
        t.name,
        tuple(int(d) for d in t.shape),
        np.dtype(np.uint8) if eight_bit else np.dtype(t.dtype),
        scale,
        zp,
        np.dtype(t.dtype),
        data,
    )


class Model:
    """A TensorFlow Lite model ready to run on lowp's kernels.

    Build it with :func:`load`. Call it with one NumPy array per input (the
    model's dtype and shape; the leading, batch, dimension may differ from
    the file's, as TFLite's ``resize_tensor_input`` allows): ``model(x)``
    returns the output array, or a tuple when the model has several
    outputs; ``model.run({name: array})`` takes and returns dicts keyed by
    tensor name. One inference is one native call; a Model may be called
    from many threads at once, and it pickles (as its file's bytes).
    """

    def __init__(
        self,
        graph: Graph,
        source: bytes | None = None,
        *,
        rewrite: Callable[[IntGraph], IntGraph] | None = None,
    ):
        # rewrite: applied to the integer graph before the runtime is built
        # (the quantizer narrows the clamps of b-bit activations with it)
        self.graph = graph
        self._source = source
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
        # every op reads only constants, graph inputs and earlier ops' outputs
        ready = {t.index for t in graph.tensors if t.data is not None} | set(graph.inputs)
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
        nodes = [op.node() for op in self.ops]
        used = set(graph.inputs) | set(graph.outputs)
        for n in nodes:
            used.update(n.inputs)
            used.update(n.outputs)
        tensors = {i: _tensor(graph.tensors[i]) for i in sorted(used)}
        limit = getattr(graph, "memory_limit", None)
        ig = IntGraph(tensors, nodes, list(graph.inputs), list(graph.outputs))
        if rewrite is not None:
            ig = rewrite(ig)
        try:
            self.runtime = Runtime(ig, memory_limit=limit)
        except GraphError as err:
            raise ModelError(str(err)) from None
        self.inputs: list[TensorInfo] = self.runtime.inputs
        self.outputs: list[TensorInfo] = self.runtime.outputs

    def __repr__(self) -> str:
        def fmt(infos: list[TensorInfo]) -> str:
            return ", ".join(f"{t.dtype}{list(t.shape)}" for t in infos)

        return (
            f"Model({len(self.ops)} ops, inputs [{fmt(self.inputs)}], "
            f"outputs [{fmt(self.outputs)}])"
        )

    @property
    def arena_bytes(self) -> int:
        """Activation memory of one call at the file's shapes, in bytes."""
        return self.runtime.arena_bytes

    def run(self, *inputs: Any) -> Any:
        """Run the model; a list with one array per output (a dict by output
        name when given a dict by input name)."""
        return self.runtime.run(*inputs)

    def __call__(self, *inputs: Any) -> Any:
        return self.runtime(*inputs)

    def profile(self, *inputs: Any) -> tuple[list[np.ndarray], list[OpTiming]]:
        """Run once, timing every operator natively: (outputs, timings)."""
        outputs, nodes = self.runtime.profile_nodes(*inputs)
        timings = [
            OpTiming(op.spec.index, op.spec.name, op.describe_shapes(), t.seconds)
            for op, t in zip(self.ops, nodes)
        ]
        return outputs, timings

    def trace(self, *inputs: Any) -> dict[int, np.ndarray]:
        """Run once and return every operator's outputs by tensor index (the
        model's dtypes), for comparing layer by layer."""
        return self.runtime.trace_tensors(*inputs)

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

    def __reduce__(self) -> Any:
        if self._source is None:
            raise TypeError("a Model built from a parsed graph (not load()) does not pickle")
        return (_reload, (self._source, getattr(self.graph, "memory_limit", None)))


def _reload(source: bytes, memory_limit: int | None) -> Model:
    return Model(parse(source, check_memory_limit(memory_limit)), source)


def load(
    model: str | os.PathLike[str] | bytes | bytearray | memoryview,
    *,
    memory_limit: int | None = None,
) -> Model:
    """Load a .tflite model (a path or the file's bytes), check it and pack
    its weights. Raises ModelError (a ValueError) for a malformed file and
    UnsupportedOpError (a ModelError) naming any operator lowp does not run.

    ``memory_limit`` is the most bytes one tensor of the model, and the
    activation arena of one call, may take (None:
    ``lowp.tflite.DEFAULT_MEMORY_LIMIT``, 2 GiB); a file declaring a larger
    tensor is a ModelError naming it, raised before anything is allocated,
    and so is a plan whose arena exceeds it (also for a batch size the call
    brings: then a ValueError). The model keeps it as
    ``model.graph.memory_limit``.
    """
    limit = check_memory_limit(memory_limit)
    if isinstance(model, (bytes, bytearray, memoryview)):
        data = bytes(model)
    elif isinstance(model, (str, os.PathLike)):
        with open(model, "rb") as f:
            data = f.read()
    else:
        raise TypeError(f"model must be a path or bytes, got {type(model).__name__}")
    return Model(parse(data, limit), data)
