"""ONNX front end: a float ``onnx.ModelProto`` (or the path of a .onnx file)
becomes a float graph. onnx is imported here only; initializers and
Constant nodes are the model's constants."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np

from ._fgraph import FGraph, FNode, UnsupportedModelError

__all__ = ["from_onnx", "load_onnx"]


def load_onnx(model: Any) -> Any:
    """An ``onnx.ModelProto`` from a proto, a path, or bytes."""
    import onnx

    if isinstance(model, onnx.ModelProto):
        return model
    if isinstance(model, (bytes, bytearray)):
        try:
            return onnx.load_from_string(bytes(model))
        except Exception as err:
            raise ValueError(f"model: not a readable ONNX model ({err})") from None
    if isinstance(model, (str, os.PathLike)):
        try:
            return onnx.load(os.fspath(model))
        except FileNotFoundError:
            raise FileNotFoundError(f"model: no such file {os.fspath(model)!r}") from None
        except Exception as err:
            raise ValueError(
                f"model: {os.fspath(model)!r} is not a readable ONNX file ({err})"
            ) from None
    raise TypeError(
        f"model must be a torch.nn.Module, an onnx.ModelProto or a path, got {type(model).__name__}"
    )


class _Reader:
    def __init__(self, graph: Any):
        from onnx import numpy_helper

        self.nh = numpy_helper
        self.consts: dict[str, np.ndarray] = {}
        for init in graph.initializer:
            self.consts[init.name] = numpy_helper.to_array(init)
        self.nodes: list[FNode] = []

    def where(self, node: Any, index: int) -> str:
        name = f" {node.name!r}" if node.name else ""
        return f"ONNX node {index}{name} ({node.op_type})"

    def attrs(self, node: Any) -> dict[str, Any]:
        from onnx import helper

        return {a.name: helper.get_attribute_value(a) for a in node.attribute}

    def const(self, name: str, what: str, where: str, optional: bool = False) -> np.ndarray | None:
        if not name:
            if optional:
                return None
            raise UnsupportedModelError(f"{where}: {what} is missing")
        if name not in self.consts:
            raise UnsupportedModelError(f"{where}: {what} must be a constant (an initializer)")
        return self.consts[name]

    def tensor(self, name: str, where: str) -> str:
        if name in self.consts:
            raise UnsupportedModelError(
                f"{where}: a constant operand where lowp needs an activation"
            )
        return name

    def emit(self, node: Any, where: str, op: str, inputs: list[str], **attrs: Any) -> None:
        label = node.name or f"{node.op_type}_{len(self.nodes)}"
        self.nodes.append(FNode(op, inputs, node.output[0], attrs, where, label))


def _pads(a: dict[str, Any], where: str) -> tuple[int, int, int, int]:
    auto = a.get("auto_pad", b"NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else auto
    if auto not in ("NOTSET", "VALID"):
        raise UnsupportedModelError(f"{where}: auto_pad {auto} (write explicit pads)")
    p = [int(v) for v in a.get("pads", [0, 0, 0, 0])]
    if len(p) != 4:
        raise UnsupportedModelError(f"{where}: only 2-D operations are supported")
    return (p[0], p[2], p[1], p[3])  # ONNX: begins (h, w), ends (h, w)


def _ints(v: Any, default: tuple[int, int]) -> tuple[int, int]:
    if v is None:
        return default
    vals = tuple(int(x) for x in v)
    if len(vals) != 2:
        raise UnsupportedModelError(f"expected two values, got {list(vals)}")
    return vals  # type: ignore[return-value]


def _handlers() -> dict[str, Callable[[_Reader, Any, str], None]]:
    def conv(r: _Reader, node: Any, where: str) -> None:
        a = r.attrs(node)
        w = r.const(node.input[1], "the weight", where)
        assert w is not None
        if w.ndim != 4:
            raise UnsupportedModelError(f"{where}: only 2-D convolutions are supported")
        b = r.const(node.input[2], "the bias", where, True) if len(node.input) > 2 else None
        attrs: dict[str, Any] = {
            "w": w.astype(np.float32),
            "b": b,
            "stride": _ints(a.get("strides"), (1, 1)),
            "pads": _pads(a, where),
            "dilation": _ints(a.get("dilations"), (1, 1)),
            "groups": int(a.get("group", 1)),
        }
        kind = "conv"
        if node.op_type == "ConvTranspose":
            kind = "conv_transpose"
            if "output_shape" in a:
                raise UnsupportedModelError(f"{where}: output_shape (give pads instead)")
            attrs["output_padding"] = _ints(a.get("output_padding"), (0, 0))
        r.emit(node, where, kind, [r.tensor(node.input[0], where)], **attrs)

    def gemm(r: _Reader, node: Any, where: str) -> None:
        a = r.attrs(node)
        if a.get("transA", 0) or float(a.get("alpha", 1.0)) != 1.0:
            raise UnsupportedModelError(f"{where}: Gemm with transA or alpha != 1")
        w = r.const(node.input[1], "B (the weight)", where)
        assert w is not None
        w = w if a.get("transB", 0) else w.T
        b = r.const(node.input[2], "C (the bias)", where, True) if len(node.input) > 2 else None
        if b is not None:
            b = b * float(a.get("beta", 1.0))
            if b.size != w.shape[0]:
                raise UnsupportedModelError(f"{where}: C must hold one bias per output")
        r.emit(node, where, "linear", [r.tensor(node.input[0], where)], w=w.astype(np.float32), b=b)

    def matmul(r: _Reader, node: Any, where: str) -> None:
        w = r.const(node.input[1], "the right operand (weights)", where)
        assert w is not None
        if w.ndim != 2:
            raise UnsupportedModelError(f"{where}: the weights must be 2-D")
        r.emit(
            node,
            where,
            "linear",
            [r.tensor(node.input[0], where)],
            w=w.T.astype(np.float32),
            b=None,
        )

    def add(r: _Reader, node: Any, where: str) -> None:
        left, right = node.input[0], node.input[1]
        const = right if right in r.consts else left if left in r.consts else None
        if const is not None:
            # a MatMul's bias: fold into the linear op before it
            other = left if const == right else right
            prev = r.nodes[-1] if r.nodes else None
            c = r.consts[const].reshape(-1)
            if (
                prev is None
                or prev.op != "linear"
                or prev.output != other
                or prev.attrs["b"] is not None
                or c.size != prev.attrs["w"].shape[0]
            ):
                raise UnsupportedModelError(
                    f"{where}: adding a constant is supported only as the bias of the MatMul "
                    "just before"
                )
            prev.attrs["b"] = c.astype(np.float32)
            prev.output = node.output[0]
            return
        r.emit(node, where, "add", [r.tensor(left, where), r.tensor(right, where)])

    def batch_norm(r: _Reader, node: Any, where: str) -> None:
        a = r.attrs(node)
        if a.get("training_mode", 0):
            raise UnsupportedModelError(f"{where}: batch norm in training mode")
        vals = [
            r.const(n, what, where)
            for n, what in zip(node.input[1:5], ("scale", "B", "mean", "var"))
        ]
        gamma, beta, mean, var = vals
        r.emit(
            node,
            where,
            "batch_norm",
            [r.tensor(node.input[0], where)],
            gamma=gamma,
            beta=beta,
            mean=mean,
            var=var,
            eps=float(a.get("epsilon", 1e-5)),
        )

    def relu(r: _Reader, node: Any, where: str) -> None:
        r.emit(node, where, "relu", [r.tensor(node.input[0], where)])

    def clip(r: _Reader, node: Any, where: str) -> None:
        a = r.attrs(node)
        lo: float | None = a.get("min")
        hi: float | None = a.get("max")
        if len(node.input) > 1 and node.input[1]:
            lo = float(np.asarray(r.const(node.input[1], "min", where)).reshape(()))
        if len(node.input) > 2 and node.input[2]:
            hi = float(np.asarray(r.const(node.input[2], "max", where)).reshape(()))
        r.emit(node, where, "clamp", [r.tensor(node.input[0], where)], lo=lo, hi=hi)

    def pool(r: _Reader, node: Any, where: str) -> None:
        a = r.attrs(node)
        kernel = _ints(a.get("kernel_shape"), (1, 1))
        attrs: dict[str, Any] = {
            "kernel": kernel,
            "stride": _ints(a.get("strides"), (1, 1)),
            "pads": _pads(a, where),
            "ceil_mode": bool(a.get("ceil_mode", 0)),
        }
        if node.op_type == "MaxPool":
            if len(node.output) > 1 and node.output[1]:
                raise UnsupportedModelError(f"{where}: MaxPool's indices output")
            attrs["dilation"] = _ints(a.get("dilations"), (1, 1))
            r.emit(node, where, "max_pool", [r.tensor(node.input[0], where)], **attrs)
        else:
            attrs["count_include_pad"] = bool(a.get("count_include_pad", 0))
            r.emit(node, where, "avg_pool", [r.tensor(node.input[0], where)], **attrs)

    def global_pool(r: _Reader, node: Any, where: str) -> None:
        r.emit(node, where, "global_avg_pool", [r.tensor(node.input[0], where)])

    def reduce_mean(r: _Reader, node: Any, where: str) -> None:
        a = r.attrs(node)
        axes = a.get("axes")
        if axes is None and len(node.input) > 1:
            axes = r.const(node.input[1], "axes", where)
        if axes is None or sorted(int(v) % 4 for v in axes) != [2, 3] or not a.get("keepdims", 1):
            raise UnsupportedModelError(
                f"{where}: ReduceMean over axes other than H and W (keepdims)"
            )
        r.emit(node, where, "global_avg_pool", [r.tensor(node.input[0], where)])

    def concat(r: _Reader, node: Any, where: str) -> None:
        a = r.attrs(node)
        r.emit(node, where, "concat", [r.tensor(i, where) for i in node.input], axis=int(a["axis"]))

    def flatten(r: _Reader, node: Any, where: str) -> None:
        a = r.attrs(node)
        r.emit(
            node, where, "flatten", [r.tensor(node.input[0], where)], start=int(a.get("axis", 1))
        )

    def reshape(r: _Reader, node: Any, where: str) -> None:
        shape = r.const(node.input[1], "the shape", where)
        assert shape is not None
        if 0 in shape.tolist():
            # ONNX: 0 copies the input's dimension; only the batch one is meaningful here
            vals = shape.tolist()
            if vals.index(0) != 0 or vals.count(0) > 1:
                raise UnsupportedModelError(f"{where}: Reshape with 0 entries other than the first")
            vals[0] = -1 if -1 not in vals else vals[0]
            shape = np.asarray(vals)
        r.emit(
            node,
            where,
            "reshape",
            [r.tensor(node.input[0], where)],
            shape=[int(v) for v in shape.reshape(-1)],
        )

    def identity(r: _Reader, node: Any, where: str) -> None:
        r.emit(node, where, "identity", [r.tensor(node.input[0], where)])

    return {
        "Conv": conv,
        "ConvTranspose": conv,
        "Gemm": gemm,
        "MatMul": matmul,
        "Add": add,
        "BatchNormalization": batch_norm,
        "Relu": relu,
        "Clip": clip,
        "MaxPool": pool,
        "AveragePool": pool,
        "GlobalAveragePool": global_pool,
        "ReduceMean": reduce_mean,
        "Concat": concat,
        "Flatten": flatten,
        "Reshape": reshape,
        "Identity": identity,
        "Dropout": identity,
    }


def from_onnx(model: Any) -> FGraph:
    """The float graph of an ONNX model (proto, path or bytes)."""
    proto = load_onnx(model)
    graph = proto.graph
    r = _Reader(graph)
    handlers = _handlers()
    for index, node in enumerate(graph.node):
        where = r.where(node, index)
        if node.domain not in ("", "ai.onnx"):
            raise UnsupportedModelError(f"{where}: operator domain {node.domain!r}")
        if node.op_type == "Constant":
            a = r.attrs(node)
            if "value" not in a:
                raise UnsupportedModelError(f"{where}: only tensor Constants are supported")
            r.consts[node.output[0]] = r.nh.to_array(a["value"])
            continue
        handler = handlers.get(node.op_type)
        if handler is None:
            raise UnsupportedModelError(
                f"{where}: lowp cannot quantize the operator {node.op_type}"
            )
        handler(r, node, where)
    inputs, shapes = [], {}
    for vi in graph.input:
        if vi.name in r.consts:
            continue  # an initializer listed as an input (old exporters)
        t = vi.type.tensor_type
        if t.elem_type != 1:  # FLOAT
            raise UnsupportedModelError(f"model input {vi.name!r}: lowp quantizes float32 models")
        dims = [int(d.dim_value) if d.HasField("dim_value") else None for d in t.shape.dim]
        inputs.append(vi.name)
        shapes[vi.name] = tuple(dims)
    outputs = [vo.name for vo in graph.output]
    return FGraph(r.nodes, inputs, outputs, shapes, "onnx")
