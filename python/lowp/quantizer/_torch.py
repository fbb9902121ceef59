"""PyTorch front end: a ``torch.nn.Module`` captured with ``torch.export``
(ATen operators, before decomposition) becomes a float graph; a model that
torch.export cannot capture goes through ``torch.fx`` instead (``_fx``).
torch is imported here only."""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

import numpy as np

from ._fgraph import FGraph, FNode, UnsupportedModelError

__all__ = ["from_torch"]


def _pair(v: Any, n: int = 2) -> tuple[int, ...]:
    if isinstance(v, (list, tuple)):
        vals = [int(x) for x in v]
        if len(vals) == 1:
            vals = vals * n
        return tuple(vals)
    return (int(v),) * n


def _pads(v: Any) -> tuple[int, int, int, int]:
    ph, pw = _pair(v)
    return (ph, ph, pw, pw)


def _args(node: Any) -> dict[str, Any]:
    """The call's arguments by schema name, defaults filled in."""
    schema = node.target._schema
    out: dict[str, Any] = {}
    for k, arg in enumerate(schema.arguments):
        if k < len(node.args):
            out[arg.name] = node.args[k]
        elif arg.name in node.kwargs:
            out[arg.name] = node.kwargs[arg.name]
        elif arg.has_default_value():
            out[arg.name] = arg.default_value
        else:
            out[arg.name] = None
    return out


class _Capture:
    def __init__(self, ep: Any):
        import torch

        self.torch = torch
        sig = ep.graph_signature
        self.consts: dict[str, np.ndarray] = {}
        state = ep.state_dict
        constants = getattr(ep, "constants", {})
        for name, key in sig.inputs_to_parameters.items():
            self.consts[name] = self.array(state[key])
        for name, key in sig.inputs_to_buffers.items():
            src = state[key] if key in state else constants[key]
            self.consts[name] = self.array(src)
        for name, key in getattr(sig, "inputs_to_lifted_tensor_constants", {}).items():
            self.consts[name] = self.array(constants[key])
        self.user_inputs = list(sig.user_inputs)
        self.user_outputs = list(sig.user_outputs)
        self.nodes: list[FNode] = []
        self.tuples: dict[str, list[str | None]] = {}
        self.ep = ep

    def array(self, t: Any) -> np.ndarray:
        return t.detach().to(self.torch.float32).cpu().numpy().copy()

    def const(self, v: Any, what: str, node: Any) -> np.ndarray | None:
        if v is None:
            return None
        name = getattr(v, "name", None)
        if name not in self.consts:
            raise UnsupportedModelError(
                f"{_where(node)}: {what} must be a constant (a parameter or buffer)"
            )
        return self.consts[name]

    def tensor(self, v: Any, node: Any) -> str:
        name = getattr(v, "name", None)
        if name is None or name in self.consts:
            raise UnsupportedModelError(
                f"{_where(node)}: an operand is a constant or a Python value where lowp needs "
                "an activation"
            )
        return str(name)

    def emit(self, node: Any, op: str, inputs: list[str], **attrs: Any) -> None:
        self.nodes.append(FNode(op, inputs, node.name, attrs, _where(node), label_of(node)))


def module_of(node: Any) -> str:
    """ ", module 'enc1.0' (Conv2d)" for a graph node traced inside a
    submodule (torch.export and torch.fx both record the stack), or ""."""
    stack = node.meta.get("nn_module_stack") if hasattr(node, "meta") else None
    if not stack:
        return ""
    path, kind = list(stack.values())[-1]
    kind_name = getattr(kind, "__name__", str(kind)).rsplit(".", 1)[-1]
    return f", module {path!r} ({kind_name})" if path else ""


def _where(node: Any) -> str:
    target = getattr(node.target, "__name__", str(node.target))
    return f"torch node {node.name!r} ({target}{module_of(node)})"


def label_of(node: Any) -> str:
    """The innermost module's path of a traced node, else the node's name."""
    stack = node.meta.get("nn_module_stack") if hasattr(node, "meta") else None
    if stack:
        path = list(stack.values())[-1][0]
        if path:
            return str(path)
    return str(node.name)


def conv_pads(padding: Any, w: np.ndarray, dilation: Any) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) of a convolution's ``padding`` argument:
    numbers, or 'valid' / 'same' (stride 1: PyTorch puts the odd pixel after)."""
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0, 0, 0)
        kh, kw = w.shape[2:]
        dh, dw = _pair(dilation)
        th, tw = dh * (kh - 1), dw * (kw - 1)
        return (th // 2, th - th // 2, tw // 2, tw - tw // 2)
    return _pads(padding)


def _conv(c: _Capture, node: Any, a: dict[str, Any], transposed: bool) -> None:
    x = c.tensor(a["input"], node)
    w = c.const(a["weight"], "the weight", node)
    assert w is not None
    if w.ndim != 4:
        raise UnsupportedModelError(f"{_where(node)}: only 2-D convolutions are supported")
    attrs = {
        "w": w,
        "b": c.const(a.get("bias"), "the bias", node),
        "stride": _pair(a.get("stride", 1)),
        "pads": conv_pads(a.get("padding", 0), w, a.get("dilation", 1)),
        "dilation": _pair(a.get("dilation", 1)),
        "groups": int(a.get("groups", 1)),
    }
    if transposed:
        attrs["output_padding"] = _pair(a.get("output_padding", 0))
    c.emit(node, "conv_transpose" if transposed else "conv", [x], **attrs)


def _batch_norm(c: _Capture, node: Any, a: dict[str, Any]) -> None:
    if a.get("training"):
        raise UnsupportedModelError(f"{_where(node)}: batch norm in training mode (call .eval())")
    mean = c.const(a["running_mean"], "the running mean", node)
    var = c.const(a["running_var"], "the running variance", node)
    assert mean is not None and var is not None
    gamma = c.const(a.get("weight"), "the weight", node)
    beta = c.const(a.get("bias"), "the bias", node)
    n = mean.size
    c.emit(
        node,
        "batch_norm",
        [c.tensor(a["input"], node)],
        mean=mean,
        var=var,
        gamma=np.ones(n, np.float32) if gamma is None else gamma,
        beta=np.zeros(n, np.float32) if beta is None else beta,
        eps=float(a["eps"]),
    )


def _pool_args(a: dict[str, Any]) -> dict[str, Any]:
    kernel = _pair(a["kernel_size"])
    stride = _pair(a["stride"]) if a.get("stride") else kernel
    return {
        "kernel": kernel,
        "stride": stride,
        "pads": _pads(a.get("padding", 0)),
        "ceil_mode": bool(a.get("ceil_mode", False)),
    }


def _handlers() -> dict[str, Callable[[_Capture, Any, dict[str, Any]], None]]:
    def conv2d(c, node, a):
        _conv(c, node, a, False)

    def conv_transpose2d(c, node, a):
        _conv(c, node, a, True)

    def convolution(c, node, a):
        _conv(c, node, a, bool(a["transposed"]))

    def linear(c, node, a):
        w = c.const(a["weight"], "the weight", node)
        assert w is not None
        if w.ndim != 2:
            raise UnsupportedModelError(f"{_where(node)}: the weight must be 2-D")
        b = c.const(a.get("bias"), "the bias", node)
        c.emit(node, "linear", [c.tensor(a["input"], node)], w=w, b=b)

    def relu(c, node, a):
        c.emit(node, "relu", [c.tensor(a["self"], node)])

    def hardtanh(c, node, a):
        c.emit(
            node,
            "clamp",
            [c.tensor(a["self"], node)],
            lo=float(a["min_val"]),
            hi=float(a["max_val"]),
        )

    def relu6(c, node, a):
        c.emit(node, "clamp", [c.tensor(a["self"], node)], lo=0.0, hi=6.0)

    def clamp(c, node, a):
        lo, hi = a.get("min"), a.get("max")
        if not all(v is None or isinstance(v, (int, float)) for v in (lo, hi)):
            raise UnsupportedModelError(f"{_where(node)}: clamp bounds must be numbers")
        c.emit(node, "clamp", [c.tensor(a["self"], node)], lo=lo, hi=hi)

    def max_pool2d(c, node, a):
        attrs = _pool_args(a)
        attrs["dilation"] = _pair(a.get("dilation", 1))
        c.emit(node, "max_pool", [c.tensor(a["self"], node)], **attrs)

    def avg_pool2d(c, node, a):
        if a.get("divisor_override") is not None:
            raise UnsupportedModelError(f"{_where(node)}: divisor_override is not supported")
        attrs = _pool_args(a)
        attrs["count_include_pad"] = bool(a.get("count_include_pad", True))
        c.emit(node, "avg_pool", [c.tensor(a["self"], node)], **attrs)

    def adaptive_avg_pool2d(c, node, a):
        if _pair(a["output_size"]) != (1, 1):
            raise UnsupportedModelError(
                f"{_where(node)}: adaptive average pooling to {a['output_size']}; lowp "
                "supports the global one (output size 1)"
            )
        c.emit(node, "global_avg_pool", [c.tensor(a["self"], node)])

    def mean(c, node, a):
        dims = sorted(int(d) % 4 for d in (a.get("dim") or []))
        if dims != [2, 3] or not a.get("keepdim"):
            raise UnsupportedModelError(
                f"{_where(node)}: mean over {a.get('dim')} (keepdim={a.get('keepdim')}); lowp "
                "supports the mean over H and W with keepdim=True"
            )
        c.emit(node, "global_avg_pool", [c.tensor(a["self"], node)])

    def cat(c, node, a):
        c.emit(node, "concat", [c.tensor(t, node) for t in a["tensors"]], axis=int(a["dim"]))

    def add(c, node, a):
        if a.get("alpha", 1) != 1:
            raise UnsupportedModelError(f"{_where(node)}: add with alpha != 1")
        c.emit(node, "add", [c.tensor(a["self"], node), c.tensor(a["other"], node)])

    def flatten(c, node, a):
        end = int(a.get("end_dim", -1))
        if end != -1:
            rank = len(node.args[0].meta["val"].shape) if "val" in node.args[0].meta else None
            if rank is None or end % rank != rank - 1:
                raise UnsupportedModelError(f"{_where(node)}: flatten must run to the last axis")
        c.emit(node, "flatten", [c.tensor(a["self"], node)], start=int(a.get("start_dim", 0)))

    def view(c, node, a):
        c.emit(node, "reshape", [c.tensor(a["self"], node)], shape=[int(v) for v in a["size"]])

    def reshape(c, node, a):
        c.emit(node, "reshape", [c.tensor(a["self"], node)], shape=[int(v) for v in a["shape"]])

    def identity(c, node, a):
        first = next(iter(a.values()))
        c.emit(node, "identity", [c.tensor(first, node)])

    def batch_norm(c, node, a):
        _batch_norm(c, node, a)

    return {
        "conv2d": conv2d,
        "conv_transpose2d": conv_transpose2d,
        "convolution": convolution,
        "linear": linear,
        "relu": relu,
        "relu_": relu,
        "hardtanh": hardtanh,
        "hardtanh_": hardtanh,
        "relu6": relu6,
        "clamp": clamp,
        "clamp_": clamp,
        "max_pool2d": max_pool2d,
        "avg_pool2d": avg_pool2d,
        "adaptive_avg_pool2d": adaptive_avg_pool2d,
        "mean": mean,
        "cat": cat,
        "concat": cat,
        "add": add,
        "add_": add,
        "flatten": flatten,
        "view": view,
        "reshape": reshape,
        "_unsafe_view": view,
        "dropout": identity,
        "dropout_": identity,
        "clone": identity,
        "contiguous": identity,
        "alias": identity,
        "detach": identity,
        "batch_norm": batch_norm,
        "_native_batch_norm_legit_no_training": batch_norm,
    }


def brief(err: BaseException) -> str:
    """An exception in one line: its type and the first line of its message."""
    lines = str(err).strip().splitlines()
    return f"{type(err).__name__}: {lines[0]}" if lines else type(err).__name__


def from_torch(model: Any, example: list[np.ndarray]) -> FGraph:
    """The float graph of ``model`` (an ``nn.Module``) captured on ``example``
    inputs (source layout, float32): with ``torch.export``, or where that
    fails with ``torch.fx.symbolic_trace`` (DESIGN.md section 8). The model
    is in eval mode while it is captured; every module gets its own mode
    back."""
    import torch

    inputs = tuple(torch.from_numpy(np.ascontiguousarray(x)) for x in example)
    # each module's own mode, restored one by one: a model in training with
    # some layers frozen in eval gets exactly that back
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        with torch.no_grad():
            try:
                ep = torch.export.export(model, inputs)
            except Exception as err:  # torch raises many kinds; the message says what failed
                from ._fx import from_fx

                return from_fx(model, inputs, brief(err))
    finally:
        for m, training in modes:
            m.training = training
    return _from_exported(ep, example)


def _from_exported(ep: Any, example: list[np.ndarray]) -> FGraph:
    c = _Capture(ep)
    handlers = _handlers()
    for node in ep.graph.nodes:
        if node.op in ("placeholder", "output"):
            continue
        if node.op != "call_function":
            raise UnsupportedModelError(f"{_where(node)}: unexpected graph node kind {node.op}")
        if node.target is operator.getitem:
            src, index = node.args
            if index != 0 or not c.nodes or c.nodes[-1].output != src.name:
                raise UnsupportedModelError(
                    f"{_where(node)}: uses output {index} of a multi-output operation"
                )
            c.nodes.append(FNode("identity", [src.name], node.name, {}, _where(node)))
            continue
        overload = getattr(node.target, "_overloadpacket", None)
        base = getattr(overload, "__name__", str(node.target)).split(".")[-1]
        handler = handlers.get(base)
        if handler is None:
            raise UnsupportedModelError(
                f"{_where(node)}: lowp cannot quantize the operation {base!r}"
            )
        handler(c, node, _args(node))
    shapes: dict[str, tuple[int | None, ...]] = {
        str(name): tuple(int(d) for d in x.shape) for name, x in zip(c.user_inputs, example)
    }
    return FGraph(c.nodes, c.user_inputs, c.user_outputs, shapes, "torch")
