"""A graph ready to run: checked once, its weights packed once, planned once
per set of input shapes, each inference one native call."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._ir import Graph, GraphError, Tensor, check
from ._plan import NativeOps, Planned, build_plan

__all__ = ["NodeTiming", "Runtime", "TensorInfo"]


@dataclass(frozen=True)
class TensorInfo:
    """A graph input or output as the caller sees it."""

    name: str
    shape: tuple[int, ...]
    dtype: np.dtype
    scale: float | None
    zero_point: int | None  # in the caller's dtype (int8: the int8 zero point)
    index: int


@dataclass(frozen=True)
class NodeTiming:
    index: int  # node position
    seconds: float


def _info(i: int, t: Tensor) -> TensorInfo:
    zp = t.zero_point
    if zp is not None and t.view_dtype == np.int8:
        zp -= 128
    return TensorInfo(t.name, tuple(t.shape), t.view_dtype, t.scale, zp, i)


class Runtime:
    """Runs a :class:`Graph`. Safe to call from many threads at once: every
    call gets its own activation arena (from a small pool)."""

    def __init__(self, graph: Graph, *, memory_limit: int | None = None):
        check(graph)
        self.graph = graph
        self.memory_limit = memory_limit
        self._native = NativeOps(graph)
        self._lock = threading.Lock()
        self._planned = build_plan(graph, self._native, memory_limit=memory_limit)
        key = tuple(tuple(graph.tensors[i].shape) for i in graph.inputs)
        self._plans: dict[tuple[tuple[int, ...], ...], tuple[Graph, Planned]] = {
            key: (graph, self._planned)
        }
        self._trace_plans: dict[tuple[tuple[int, ...], ...], tuple[Graph, Planned]] = {}
        self.inputs = [_info(i, graph.tensors[i]) for i in graph.inputs]
        self.outputs = [_info(i, graph.tensors[i]) for i in graph.outputs]

    @property
    def arena_bytes(self) -> int:
        """Activation memory of one call at the graph's own shapes."""
        return self._planned.layout.arena_bytes

    @property
    def arena_lower_bound(self) -> int:
        return self._planned.layout.lower_bound

    # --- inputs --------------------------------------------------------------------------

    def _arrays(self, inputs: tuple[Any, ...]) -> list[np.ndarray]:
        if len(inputs) == 1 and isinstance(inputs[0], Mapping):
            return self._named(inputs[0])
        if len(inputs) != len(self.inputs):
            raise TypeError(f"the model takes {len(self.inputs)} input(s), got {len(inputs)}")
        arrays = []
        for pos, (info, x) in enumerate(zip(self.inputs, inputs)):
            if not (type(x) is np.ndarray and x.dtype == info.dtype and x.flags.c_contiguous):
                x = self._convert(pos, info, x)
            arrays.append(x)
        return arrays

    def _convert(self, pos: int, info: TensorInfo, x: Any) -> np.ndarray:
        arr = np.asarray(x)
        name = f"input {pos} ({info.name!r})"
        if arr.dtype != info.dtype:
            raise TypeError(f"{name} must be {info.dtype}, got dtype {arr.dtype}")
        return np.ascontiguousarray(arr)

    def _named(self, feeds: Mapping[str, Any]) -> list[np.ndarray]:
        names = [t.name for t in self.inputs]
        unknown = sorted(set(feeds) - set(names))
        if unknown:
            raise KeyError(f"unknown input name(s) {unknown}; the model's inputs are {names}")
        missing = [n for n in names if n not in feeds]
        if missing:
            raise KeyError(f"missing input(s) {missing}")
        return self._arrays(tuple(feeds[n] for n in names))

    def _plan_for(self, arrays: list[np.ndarray], trace: bool = False) -> tuple[Graph, Planned]:
        key = tuple(x.shape for x in arrays)
        cache = self._trace_plans if trace else self._plans
        hit = cache.get(key)
        if hit is not None:
            return hit
        for pos, (info, x) in enumerate(zip(self.inputs, arrays)):
            if len(x.shape) != len(info.shape) or x.shape[1:] != info.shape[1:] or not x.shape[0]:
                raise ValueError(
                    f"input {pos} ({info.name!r}) must have shape {info.shape} (any batch size "
                    f">= 1 in the leading dimension), got {x.shape}"
                )
        with self._lock:
            hit = cache.get(key)
            if hit is not None:
                return hit
            base = self._plans.get(key)
            if base is not None:
                graph = base[0]
            else:
                shapes = {info.index: x.shape for info, x in zip(self.inputs, arrays)}
                try:
                    graph = self.graph.with_batch(shapes)
                except GraphError as err:
                    raise ValueError(f"the model cannot run these input shapes: {err}") from None
            planned = build_plan(
                graph, self._native, reuse=not trace, memory_limit=self.memory_limit
            )
            cache[key] = (graph, planned)
            return graph, planned

    # --- running -------------------------------------------------------------------------

    def _execute(
        self, arrays: list[np.ndarray], *, timed: bool = False, trace: bool = False
    ) -> tuple[Graph, Planned, list[np.ndarray], np.ndarray | None, np.ndarray | None]:
        """One run: (graph, plan, outputs, the arena when tracing, each step's
        seconds when timed)."""
        graph, planned = self._plan_for(arrays, trace)
        outs = [
            np.empty(graph.tensors[i].shape, graph.tensors[i].view_dtype) for i in graph.outputs
        ]
        arena = np.empty(planned.layout.arena_bytes, np.uint8) if trace else None
        seconds = np.zeros(planned.plan.steps) if timed else None
        planned.plan.run(arrays, outs, seconds, arena)
        return graph, planned, outs, arena, seconds

    def run(self, *inputs: Any) -> Any:
        """One array per input (or one dict {input name: array}); returns a
        list with one array per output (a dict by output name for a dict)."""
        arrays = self._arrays(inputs)
        _, _, outs, _, _ = self._execute(arrays)
        if len(inputs) == 1 and isinstance(inputs[0], Mapping):
            return {t.name: o for t, o in zip(self.outputs, outs)}
        return outs

    def __call__(self, *inputs: Any) -> Any:
        out = self.run(*inputs)
        if isinstance(out, dict):
            return out
        return out[0] if len(out) == 1 else tuple(out)

    def profile_nodes(self, *inputs: Any) -> tuple[list[np.ndarray], list[NodeTiming]]:
        """Runs once with native timers: (outputs, one timing per node)."""
        arrays = self._arrays(inputs)
        _, planned, outs, _, seconds = self._execute(arrays, timed=True)
        assert seconds is not None
        timings = [
            NodeTiming(pos, float(seconds[a:b].sum())) for pos, (a, b) in enumerate(planned.steps)
        ]
        return outs, timings

    def trace_tensors(self, *inputs: Any) -> dict[int, np.ndarray]:
        """Runs once keeping every tensor: {tensor id: array} for every node
        output (the caller's dtypes), for comparing layer by layer."""
        arrays = self._arrays(inputs)
        graph, planned, _, arena, _ = self._execute(arrays, trace=True)
        assert arena is not None
        out: dict[int, np.ndarray] = {}
        for node in graph.nodes:
            for i in node.outputs:
                t = graph.tensors[i]
                at = planned.layout.offsets[i]
                raw = arena[at : at + t.nbytes].view(t.dtype).reshape(t.shape)
                if t.view_dtype == np.int8:
                    raw = (raw ^ np.uint8(0x80)).view(np.int8)
                out[i] = np.array(raw, dtype=t.view_dtype, copy=True)
        return out

    def __reduce__(self) -> Any:
        return (_rebuild, (self.graph, self.memory_limit))


def _rebuild(graph: Graph, memory_limit: int | None) -> Runtime:
    return Runtime(graph, memory_limit=memory_limit)
