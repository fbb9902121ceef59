"""PyTorch front end, second route: a model that ``torch.export`` cannot
capture is traced with ``torch.fx.symbolic_trace`` instead, and its
GraphModule becomes the same float graph (the op kinds and attribute
conventions of ``_fgraph``) as the export route gives.

fx keeps the modules of ``torch.nn`` whole (``call_module`` nodes), records
functions and tensor methods as they are called (``call_function``,
``call_method``) and parameters used outside a module as ``get_attr``. It
runs no tensor code while tracing, so the traced graph is run once on the
example batch to learn each node's shape and the values of shape
expressions (``x.view(x.size(0), -1)``): those become the fixed numbers the
export route would have recorded too. torch is imported here only."""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

import numpy as np

from ._fgraph import FGraph, FNode, UnsupportedModelError
from ._torch import _pads, _pair, brief, conv_pads, label_of, module_of

__all__ = ["from_fx"]

_REQUIRED = object()


def _fn_name(target: Any) -> str:
    """``torch.cat``, ``operator.add``, ``torch.nn.functional.relu``."""
    module = getattr(target, "__module__", None) or ""
    module = {"_operator": "operator", "torch._C._nn": "torch.nn.functional"}.get(module, module)
    name = getattr(target, "__name__", None) or repr(target)
    return f"{module}.{name}" if module else name


def _what(node: Any) -> str:
    """The operation of a node as its source names it."""
    if node.op == "call_function":
        return _fn_name(node.target)
    if node.op == "call_method":
        return f"Tensor.{node.target}"
    return str(node.target)


class _Converter:
    def __init__(self, gm: Any, seen: dict[str, tuple[str, Any]]):
        import torch

        self.torch = torch
        self.gm = gm
        #: what running the graph on the example gave, per node: ("tensor", shape),
        #: ("value", a Python number or tuple) or ("other", the type's name)
        self.seen = seen
        self.order = {n: k for k, n in enumerate(gm.graph.nodes)}
        self.consts: dict[str, np.ndarray] = {}
        #: nodes computing numbers from shapes (x.size(0)), which only feed shapes
        self.shape_values: set[str] = set()
        self.nodes: list[FNode] = []
        self.inputs: list[str] = []
        self.outputs: list[str] = []

    # -- places and names ----------------------------------------------------------------

    def where(self, node: Any) -> str:
        if node.op == "call_module":
            kind = type(self.gm.get_submodule(node.target)).__name__
            return f"torch.fx node {node.name!r} ({kind}, module {node.target!r})"
        return f"torch.fx node {node.name!r} ({_what(node)}{module_of(node)})"

    def label(self, node: Any) -> str:
        if node.op == "call_module":
            return str(node.target)
        return label_of(node)

    def fail(self, node: Any, message: str) -> UnsupportedModelError:
        return UnsupportedModelError(f"{self.where(node)}: {message}")

    def emit(self, node: Any, op: str, inputs: list[str], **attrs: Any) -> None:
        self.nodes.append(FNode(op, inputs, node.name, attrs, self.where(node), self.label(node)))

    # -- operands ------------------------------------------------------------------------

    def is_node(self, v: Any) -> bool:
        return isinstance(v, self.torch.fx.Node)

    def tensor(self, v: Any, node: Any) -> str:
        if (
            not self.is_node(v)
            or v.name in self.consts
            or v.name in self.shape_values
            or self.seen.get(v.name, ("",))[0] != "tensor"
        ):
            raise self.fail(
                node,
                "an operand is a constant or a Python value where lowp needs an activation",
            )
        return str(v.name)

    def const(self, v: Any, what: str, node: Any) -> np.ndarray | None:
        if v is None:
            return None
        if not self.is_node(v) or v.name not in self.consts:
            raise self.fail(node, f"{what} must be a constant (a parameter or buffer)")
        return self.consts[v.name]

    def array(self, t: Any) -> np.ndarray:
        return t.detach().to(self.torch.float32).cpu().numpy().copy()

    def value(self, v: Any, what: str, node: Any) -> Any:
        """A Python value of an argument: literals as they are, shape
        expressions as the example gave them."""
        if self.is_node(v):
            if v.name not in self.shape_values:
                raise self.fail(node, f"{what} must be a number, not the tensor {v.name!r}")
            return self.seen[v.name][1]
        if isinstance(v, (list, tuple)):
            return type(v)(self.value(x, what, node) for x in v)
        return v

    def shape(self, items: Any, node: Any) -> list[int]:
        """The target shape of a view / reshape: ints, a tuple of them, or
        shape expressions."""
        vals = self.value(list(items), "the shape", node)
        if len(vals) == 1 and isinstance(vals[0], (list, tuple)):
            vals = list(vals[0])
        out: list[int] = []
        for v in vals:
            if isinstance(v, (list, tuple)):
                out.extend(v)
            else:
                out.append(v)
        if not all(isinstance(v, int) for v in out):
            raise self.fail(node, f"the shape {out} must hold integers")
        return [int(v) for v in out]

    def sized(self, v: Any, node: Any) -> None:
        """``v`` is a tensor whose shape is read (an activation or a constant)."""
        if not self.is_node(v) or self.seen.get(v.name, ("",))[0] != "tensor":
            raise self.fail(node, "reads the shape of something that is not a tensor")

    def rank(self, v: Any) -> int | None:
        got = self.seen.get(getattr(v, "name", ""))
        return len(got[1]) if got and got[0] == "tensor" else None

    def bind(
        self, node: Any, names: tuple[str, ...], defaults: dict[str, Any], args: Any = None
    ) -> dict[str, Any]:
        """The call's arguments by name, defaults filled in."""
        args = node.args if args is None else args
        if len(args) > len(names):
            raise self.fail(node, f"takes at most {len(names)} arguments, got {len(args)}")
        out = dict(zip(names, args))
        for k, v in node.kwargs.items():
            if k not in names or k in out:
                raise self.fail(node, f"an argument {k!r} lowp does not know here")
            out[k] = v
        for k in names:
            if k not in out:
                if k not in defaults:
                    raise self.fail(node, f"the argument {k!r} is missing")
                out[k] = defaults[k]
        if out.get("out") is not None:
            raise self.fail(node, "out= is not supported")
        return out

    def in_place(self, node: Any, src: Any) -> None:
        """An op that changes its input in place: fx records it as a new
        value, so a later read of the input would see the old one."""
        if not self.is_node(src):
            return
        later = [u for u in src.users if u is not node and self.order[u] > self.order[node]]
        if later:
            raise self.fail(
                node,
                f"works in place on {src.name!r}, which {later[0].name!r} reads afterwards; "
                "torch.fx does not see the change (use the op's result, or inplace=False)",
            )

    # -- the graph -----------------------------------------------------------------------

    def run(self) -> None:
        module_handlers = _module_handlers(self.torch.nn)
        functions = _function_handlers(self.torch)
        methods = _method_handlers()
        for node in self.gm.graph.nodes:
            if node.op == "placeholder":
                self.inputs.append(str(node.name))
            elif node.op == "output":
                self.outputs = self.output_names(node.args[0], node)
            elif node.op == "get_attr":
                attr = self.fetch(str(node.target))
                if isinstance(attr, self.torch.Tensor):
                    self.consts[node.name] = self.array(attr)
            elif node.op == "call_module":
                mod = self.gm.get_submodule(node.target)
                if mod._forward_hooks or mod._forward_pre_hooks:
                    raise self.fail(node, "the module has forward hooks, which torch.fx cannot see")
                for kind, handler in module_handlers:
                    if isinstance(mod, kind):
                        handler(self, node, mod)
                        break
                else:
                    raise self.fail(node, f"lowp cannot quantize the module {type(mod).__name__}")
            elif node.op in ("call_function", "call_method"):
                table = functions if node.op == "call_function" else methods
                entry = table.get(node.target)
                if entry is None:
                    raise self.fail(node, f"lowp cannot quantize the operation {_what(node)}")
                names, defaults, handler = entry
                if node.op == "call_method":
                    names = ("self", *names)
                if names and names[-1] == "*":
                    handler(self, node, {"self": node.args[0] if node.args else None})
                else:
                    handler(self, node, self.bind(node, names, defaults))
            else:
                raise self.fail(node, f"unexpected graph node kind {node.op}")

    def fetch(self, target: str) -> Any:
        obj = self.gm
        for part in target.split("."):
            obj = getattr(obj, part)
        return obj

    def output_names(self, v: Any, node: Any) -> list[str]:
        if isinstance(v, (list, tuple)):
            return [n for x in v for n in self.output_names(x, node)]
        if isinstance(v, dict):
            return [n for x in v.values() for n in self.output_names(x, node)]
        if not self.is_node(v) or v.name in self.shape_values:
            raise UnsupportedModelError(
                f"the model returns {v!r}, which is not a tensor; lowp quantizes tensor outputs"
            )
        if v.name in self.consts:
            raise UnsupportedModelError(f"the model returns the constant {v.target!r}")
        return [str(v.name)]

    # -- shared lowerings ----------------------------------------------------------------

    def conv(
        self, node: Any, x: Any, w: np.ndarray | None, b: np.ndarray | None, a: dict[str, Any]
    ) -> None:
        """A (transposed) convolution; ``a`` holds its stride, padding,
        dilation, groups and, for a transposed one, output_padding."""
        assert w is not None
        if w.ndim != 4:
            raise self.fail(node, "only 2-D convolutions are supported")
        dilation = self.value(a["dilation"], "the dilation", node)
        attrs: dict[str, Any] = {
            "w": w,
            "b": b,
            "stride": _pair(self.value(a["stride"], "the stride", node)),
            "pads": conv_pads(self.value(a["padding"], "the padding", node), w, dilation),
            "dilation": _pair(dilation),
            "groups": int(self.value(a["groups"], "groups", node)),
        }
        transposed = "output_padding" in a
        if transposed:
            attrs["output_padding"] = _pair(self.value(a["output_padding"], "output_padding", node))
            if isinstance(a["padding"], str):
                raise self.fail(node, f"padding={a['padding']!r} in a transposed convolution")
        kind = "conv_transpose" if transposed else "conv"
        self.emit(node, kind, [self.tensor(x, node)], **attrs)

    def batch_norm(self, node: Any, x: Any, mean: Any, var: Any, gamma: Any, beta: Any, eps: Any):
        n = mean.size
        self.emit(
            node,
            "batch_norm",
            [self.tensor(x, node)],
            mean=mean,
            var=var,
            gamma=np.ones(n, np.float32) if gamma is None else gamma,
            beta=np.zeros(n, np.float32) if beta is None else beta,
            eps=float(eps),
        )

    def clamp(self, node: Any, x: Any, lo: Any, hi: Any, inplace: bool) -> None:
        lo = self.value(lo, "the lower bound", node)
        hi = self.value(hi, "the upper bound", node)
        if not all(v is None or isinstance(v, (int, float)) for v in (lo, hi)):
            raise self.fail(node, "clamp bounds must be numbers")
        if inplace:
            self.in_place(node, x)
        self.emit(
            node,
            "clamp",
            [self.tensor(x, node)],
            lo=None if lo is None else float(lo),
            hi=None if hi is None else float(hi),
        )

    def relu(self, node: Any, x: Any, inplace: bool) -> None:
        if inplace:
            self.in_place(node, x)
        self.emit(node, "relu", [self.tensor(x, node)])

    def pool(self, node: Any, x: Any, kind: str, a: dict[str, Any]) -> None:
        v = {k: self.value(a[k], k, node) for k in a if k != "input"}
        kernel = _pair(v["kernel_size"])
        attrs: dict[str, Any] = {
            "kernel": kernel,
            "stride": _pair(v["stride"]) if v.get("stride") else kernel,
            "pads": _pads(v.get("padding", 0)),
            "ceil_mode": bool(v.get("ceil_mode", False)),
        }
        if kind == "max_pool":
            if v.get("return_indices"):
                raise self.fail(node, "max pooling that returns its indices")
            attrs["dilation"] = _pair(v.get("dilation", 1))
        else:
            if v.get("divisor_override") is not None:
                raise self.fail(node, "divisor_override is not supported")
            attrs["count_include_pad"] = bool(v.get("count_include_pad", True))
        self.emit(node, kind, [self.tensor(x, node)], **attrs)

    def global_pool(self, node: Any, x: Any, size: Any) -> None:
        size = self.value(size, "the output size", node)
        sizes = list(size) if isinstance(size, (list, tuple)) else [size, size]
        if sizes != [1, 1]:
            raise self.fail(
                node,
                f"adaptive average pooling to {size}; lowp supports the global one (output size 1)",
            )
        self.emit(node, "global_avg_pool", [self.tensor(x, node)])

    def flatten(self, node: Any, x: Any, start: Any, end: Any) -> None:
        start, end = (
            int(self.value(start, "start_dim", node)),
            int(self.value(end, "end_dim", node)),
        )
        if end != -1:
            rank = self.rank(x)
            if rank is None or end % rank != rank - 1:
                raise self.fail(node, "flatten must run to the last axis")
        self.emit(node, "flatten", [self.tensor(x, node)], start=start)

    def mean(self, node: Any, x: Any, dim: Any, keepdim: Any) -> None:
        dim = self.value(dim, "dim", node)
        dims = [dim] if isinstance(dim, int) else list(dim or [])
        if sorted(int(d) % 4 for d in dims) != [2, 3] or not keepdim or self.rank(x) != 4:
            raise self.fail(
                node,
                f"mean over {dim} (keepdim={keepdim}); lowp supports the mean over H and W "
                "of an NCHW tensor with keepdim=True",
            )
        self.emit(node, "global_avg_pool", [self.tensor(x, node)])

    def add(self, node: Any, x: Any, y: Any, alpha: Any = 1) -> None:
        if self.value(alpha, "alpha", node) != 1:
            raise self.fail(node, "add with alpha != 1")
        self.emit(node, "add", [self.tensor(x, node), self.tensor(y, node)])

    def reshape(self, node: Any, x: Any, shape: Any) -> None:
        self.emit(node, "reshape", [self.tensor(x, node)], shape=self.shape(shape, node))

    def shape_value(self, node: Any) -> None:
        """A number (or tuple of numbers) computed from shapes: kept as the
        example gave it, for the reshapes that read it."""
        got = self.seen.get(node.name)
        if got is None or got[0] != "value":
            raise self.fail(node, "does not compute a number from a shape")
        self.shape_values.add(node.name)


Handler = Callable[[_Converter, Any, dict[str, Any]], None]


def _module_handlers(nn: Any) -> list[tuple[type, Callable[[_Converter, Any, Any], None]]]:
    def only_input(c: _Converter, node: Any) -> Any:
        if len(node.args) != 1 or node.kwargs:
            raise c.fail(node, "the module is called with more than its input")
        return node.args[0]

    def conv(c: _Converter, node: Any, m: Any) -> None:
        x = only_input(c, node)
        if m.padding_mode != "zeros":
            raise c.fail(node, f"padding_mode={m.padding_mode!r} (lowp pads with zeros)")
        a = {"stride": m.stride, "padding": m.padding, "dilation": m.dilation, "groups": m.groups}
        if isinstance(m, nn.ConvTranspose2d):
            a["output_padding"] = m.output_padding
        b = None if m.bias is None else c.array(m.bias)
        c.conv(node, x, c.array(m.weight), b, a)

    def linear(c: _Converter, node: Any, m: Any) -> None:
        x = only_input(c, node)
        b = None if m.bias is None else c.array(m.bias)
        c.emit(node, "linear", [c.tensor(x, node)], w=c.array(m.weight), b=b)

    def batch_norm(c: _Converter, node: Any, m: Any) -> None:
        x = only_input(c, node)
        if m.training:
            raise c.fail(node, "batch norm in training mode (call .eval())")
        if m.running_mean is None or m.running_var is None:
            raise c.fail(node, "batch norm without running statistics (track_running_stats=False)")
        c.batch_norm(
            node,
            x,
            c.array(m.running_mean),
            c.array(m.running_var),
            None if m.weight is None else c.array(m.weight),
            None if m.bias is None else c.array(m.bias),
            m.eps,
        )

    def relu(c: _Converter, node: Any, m: Any) -> None:
        c.relu(node, only_input(c, node), m.inplace)

    def hardtanh(c: _Converter, node: Any, m: Any) -> None:  # also ReLU6
        c.clamp(node, only_input(c, node), m.min_val, m.max_val, m.inplace)

    def max_pool(c: _Converter, node: Any, m: Any) -> None:
        a = {
            "kernel_size": m.kernel_size,
            "stride": m.stride,
            "padding": m.padding,
            "dilation": m.dilation,
            "ceil_mode": m.ceil_mode,
            "return_indices": m.return_indices,
        }
        c.pool(node, only_input(c, node), "max_pool", a)

    def avg_pool(c: _Converter, node: Any, m: Any) -> None:
        a = {
            "kernel_size": m.kernel_size,
            "stride": m.stride,
            "padding": m.padding,
            "ceil_mode": m.ceil_mode,
            "count_include_pad": m.count_include_pad,
            "divisor_override": m.divisor_override,
        }
        c.pool(node, only_input(c, node), "avg_pool", a)

    def adaptive_avg_pool(c: _Converter, node: Any, m: Any) -> None:
        c.global_pool(node, only_input(c, node), m.output_size)

    def flatten(c: _Converter, node: Any, m: Any) -> None:
        c.flatten(node, only_input(c, node), m.start_dim, m.end_dim)

    def identity(c: _Converter, node: Any, m: Any) -> None:
        c.emit(node, "identity", [c.tensor(only_input(c, node), node)])

    return [
        (nn.Conv2d, conv),
        (nn.ConvTranspose2d, conv),
        (nn.Linear, linear),
        (nn.BatchNorm2d, batch_norm),
        (nn.ReLU, relu),
        (nn.Hardtanh, hardtanh),
        (nn.MaxPool2d, max_pool),
        (nn.AvgPool2d, avg_pool),
        (nn.AdaptiveAvgPool2d, adaptive_avg_pool),
        (nn.Flatten, flatten),
        (nn.Dropout, identity),
        (nn.Dropout1d, identity),
        (nn.Dropout2d, identity),
        (nn.Dropout3d, identity),
        (nn.AlphaDropout, identity),
        (nn.Identity, identity),
    ]


_Entry = tuple[tuple[str, ...], dict[str, Any], Handler]


def _function_handlers(torch: Any) -> dict[Any, _Entry]:
    F = torch.nn.functional

    def cat(c: _Converter, node: Any, a: dict[str, Any]) -> None:
        dim = a["dim"] if "dim" in a else a["axis"]
        tensors = [c.tensor(t, node) for t in a["tensors"]]
        c.emit(node, "concat", tensors, axis=int(c.value(dim, "dim", node)))

    def add(c: _Converter, node: Any, a: dict[str, Any]) -> None:
        if any(c.is_node(v) and v.name in c.shape_values for v in (a["input"], a["other"])):
            c.shape_value(node)
            return
        c.add(node, a["input"], a["other"], a.get("alpha", 1))

    def arithmetic(c: _Converter, node: Any, a: dict[str, Any]) -> None:
        if not any(c.is_node(v) and v.name in c.shape_values for v in a.values()):
            raise c.fail(node, f"lowp cannot quantize the operation {_what(node)}")
        c.shape_value(node)

    def relu(c: _Converter, node: Any, a: dict[str, Any]) -> None:
        c.relu(node, a["input"], bool(a.get("inplace")))

    def relu_(c: _Converter, node: Any, a: dict[str, Any]) -> None:
        c.relu(node, a["input"], True)

    def relu6(c: _Converter, node: Any, a: dict[str, Any]) -> None:
        c.clamp(node, a["input"], 0.0, 6.0, bool(a["inplace"]))

    def hardtanh(c: _Converter, node: Any, a: dict[str, Any]) -> None:
        c.clamp(node, a["input"], a["min_val"], a["max_val"], bool(a.get("inplace")))

    def hardtanh_(c: _Converter, node: Any, a: dict[str, Any]) -> None:
        c.clamp(node, a["input"], a["min_val"], a["max_val"], True)

    def clamp(c: _Converter, node: Any, a: dict[str, Any]) -> None:
        c.clamp(node, a["input"], a["min"], a["max"], False)

    def clamp_(c: _Converter, node: Any, a: dict[str, Any]) -> None:
        c.clamp(node, a["input"], a["min"], a["max"], True)

    def max_pool(c: _Converter, node: Any, a: dict[str, Any]) -> None:
        c.pool(node, a["input"], "max_pool", a)

    def avg_pool(c: _Converter, node: Any, a: dict[str, Any]) -> None:
        c.pool(node, a["input"], "avg_pool", a)

    def adaptive_avg_pool(c: _Converter, node: Any, a: dict[str, Any]) -> None:
        c.global_pool(node, a["input"], a["output_size"])

    def flatten(c: _Converter, node: Any, a: dict[str, Any]) -> None:
        c.flatten(node, a["input"], a["start_dim"], a["end_dim"])

    def reshape(c: _Converter, node: Any, a: dict[str, Any]) -> None:
        c.reshape(node, a["input"], [a["shape"]])

    def mean(c: _Converter, node: Any, a: dict[str, Any]) -> None:
        if a["dtype"] is not None:
            raise c.fail(node, "mean with a dtype")
        c.mean(node, a["input"], a["dim"], c.value(a["keepdim"], "keepdim", node))

    def conv(c: _Converter, node: Any, a: dict[str, Any]) -> None:
        w = c.const(a["weight"], "the weight", node)
        c.conv(node, a["input"], w, c.const(a["bias"], "the bias", node), a)

    def linear(c: _Converter, node: Any, a: dict[str, Any]) -> None:
        w = c.const(a["weight"], "the weight", node)
        assert w is not None
        if w.ndim != 2:
            raise c.fail(node, "the weight must be 2-D")
        b = c.const(a["bias"], "the bias", node)
        c.emit(node, "linear", [c.tensor(a["input"], node)], w=w, b=b)

    def batch_norm(c: _Converter, node: Any, a: dict[str, Any]) -> None:
        if c.value(a["training"], "training", node):
            raise c.fail(node, "batch norm in training mode (training=True)")
        mean = c.const(a["running_mean"], "the running mean", node)
        var = c.const(a["running_var"], "the running variance", node)
        if mean is None or var is None:
            raise c.fail(node, "batch norm without running statistics")
        gamma = c.const(a["weight"], "the weight", node)
        beta = c.const(a["bias"], "the bias", node)
        c.batch_norm(node, a["input"], mean, var, gamma, beta, c.value(a["eps"], "eps", node))

    def dropout(c: _Converter, node: Any, a: dict[str, Any]) -> None:
        if c.value(a["training"], "training", node):
            raise c.fail(
                node,
                "dropout with training=True drops values at inference too (pass "
                "training=self.training)",
            )
        c.emit(node, "identity", [c.tensor(a["input"], node)])

    def getattr_(c: _Converter, node: Any, a: dict[str, Any]) -> None:
        if a["name"] != "shape":
            raise c.fail(node, f"reads the attribute {a['name']!r} of a tensor")
        c.sized(a["input"], node)
        c.shape_value(node)

    def getitem(c: _Converter, node: Any, a: dict[str, Any]) -> None:
        src = a["input"]
        if c.is_node(src) and src.name in c.shape_values:
            c.shape_value(node)
            return
        if c.seen.get(getattr(src, "name", ""), ("",))[0] == "tensor":
            raise c.fail(node, "indexes or slices a tensor (x[...]); lowp cannot quantize that")
        raise c.fail(node, "takes one output of an operation with several")

    unary = ("input",)
    inplace = ("input", "inplace")
    clamp_args: tuple[tuple[str, ...], dict[str, Any]] = (
        ("input", "min", "max", "out"),
        {"min": None, "max": None, "out": None},
    )
    max_pool_args = (
        ("input", "kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices"),
        {"stride": None, "padding": 0, "dilation": 1, "ceil_mode": False, "return_indices": False},
    )
    avg_pool_args = (
        (
            "input",
            "kernel_size",
            "stride",
            "padding",
            "ceil_mode",
            "count_include_pad",
            "divisor_override",
        ),
        {
            "stride": None,
            "padding": 0,
            "ceil_mode": False,
            "count_include_pad": True,
            "divisor_override": None,
        },
    )
    conv_defaults = {"bias": None, "stride": 1, "padding": 0, "dilation": 1, "groups": 1}
    two = ("input", "other")
    table: dict[Any, _Entry] = {
        torch.cat: (("tensors", "dim", "out"), {"dim": 0, "out": None}, cat),
        torch.concat: (("tensors", "dim", "out"), {"dim": 0, "out": None}, cat),
        torch.concatenate: (("tensors", "axis", "out"), {"axis": 0, "out": None}, cat),
        operator.add: (two, {}, add),
        torch.add: (("input", "other", "alpha", "out"), {"alpha": 1, "out": None}, add),
        operator.mul: (two, {}, arithmetic),
        operator.sub: (two, {}, arithmetic),
        operator.floordiv: (two, {}, arithmetic),
        torch.relu: (unary, {}, relu),
        torch.relu_: (unary, {}, relu_),
        F.relu: (inplace, {"inplace": False}, relu),
        F.relu_: (unary, {}, relu_),
        F.relu6: (inplace, {"inplace": False}, relu6),
        F.hardtanh: (
            ("input", "min_val", "max_val", "inplace"),
            {"min_val": -1.0, "max_val": 1.0, "inplace": False},
            hardtanh,
        ),
        F.hardtanh_: (
            ("input", "min_val", "max_val"),
            {"min_val": -1.0, "max_val": 1.0},
            hardtanh_,
        ),
        torch.clamp: (*clamp_args, clamp),
        torch.clip: (*clamp_args, clamp),
        torch.clamp_: (*clamp_args, clamp_),
        F.max_pool2d: (*max_pool_args, max_pool),
        torch.max_pool2d: (*max_pool_args, max_pool),
        F.avg_pool2d: (*avg_pool_args, avg_pool),
        F.adaptive_avg_pool2d: (("input", "output_size"), {}, adaptive_avg_pool),
        torch.flatten: (
            ("input", "start_dim", "end_dim"),
            {"start_dim": 0, "end_dim": -1},
            flatten,
        ),
        torch.reshape: (("input", "shape"), {}, reshape),
        torch.mean: (
            ("input", "dim", "keepdim", "dtype", "out"),
            {"dim": None, "keepdim": False, "dtype": None, "out": None},
            mean,
        ),
        torch.conv2d: (
            ("input", "weight", "bias", "stride", "padding", "dilation", "groups"),
            conv_defaults,
            conv,
        ),
        torch.conv_transpose2d: (
            (
                "input",
                "weight",
                "bias",
                "stride",
                "padding",
                "output_padding",
                "groups",
                "dilation",
            ),
            {**conv_defaults, "output_padding": 0},
            conv,
        ),
        F.linear: (("input", "weight", "bias"), {"bias": None}, linear),
        F.batch_norm: (
            (
                "input",
                "running_mean",
                "running_var",
                "weight",
                "bias",
                "training",
                "momentum",
                "eps",
            ),
            {"weight": None, "bias": None, "training": False, "momentum": 0.1, "eps": 1e-5},
            batch_norm,
        ),
        F.dropout: (
            ("input", "p", "training", "inplace"),
            {"p": 0.5, "training": True, "inplace": False},
            dropout,
        ),
        getattr: (("input", "name"), {}, getattr_),
        operator.getitem: (("input", "index"), {}, getitem),
    }
    return table


def _method_handlers() -> dict[str, _Entry]:
    """Tensor methods; the receiver is the argument ``self``."""

    def view(c: _Converter, node: Any, a: dict[str, Any]) -> None:
        if node.kwargs:
            raise c.fail(node, "give the shape as positional arguments")
        c.reshape(node, node.args[0], node.args[1:])

    def flatten(c: _Converter, node: Any, a: dict[str, Any]) -> None:
        c.flatten(node, a["self"], a["start_dim"], a["end_dim"])

    def relu(c: _Converter, node: Any, a: dict[str, Any]) -> None:
        c.relu(node, a["self"], False)

    def relu_(c: _Converter, node: Any, a: dict[str, Any]) -> None:
        c.relu(node, a["self"], True)

    def clamp(c: _Converter, node: Any, a: dict[str, Any]) -> None:
        c.clamp(node, a["self"], a["min"], a["max"], False)

    def clamp_(c: _Converter, node: Any, a: dict[str, Any]) -> None:
        c.clamp(node, a["self"], a["min"], a["max"], True)

    def contiguous(c: _Converter, node: Any, a: dict[str, Any]) -> None:
        c.emit(node, "identity", [c.tensor(a["self"], node)])

    def size(c: _Converter, node: Any, a: dict[str, Any]) -> None:
        c.sized(a["self"], node)
        c.shape_value(node)

    def add(c: _Converter, node: Any, a: dict[str, Any]) -> None:
        c.add(node, a["self"], a["other"], a["alpha"])

    def add_(c: _Converter, node: Any, a: dict[str, Any]) -> None:
        c.in_place(node, a["self"])
        c.add(node, a["self"], a["other"], a["alpha"])

    def mean(c: _Converter, node: Any, a: dict[str, Any]) -> None:
        if a["dtype"] is not None:
            raise c.fail(node, "mean with a dtype")
        c.mean(node, a["self"], a["dim"], c.value(a["keepdim"], "keepdim", node))

    varargs: tuple[str, ...] = ("*",)
    clamp_args: tuple[tuple[str, ...], dict[str, Any]] = (
        ("min", "max"),
        {"min": None, "max": None},
    )
    flatten_args: tuple[tuple[str, ...], dict[str, Any]] = (
        ("start_dim", "end_dim"),
        {"start_dim": 0, "end_dim": -1},
    )
    return {
        "view": (varargs, {}, view),
        "reshape": (varargs, {}, view),
        "flatten": (*flatten_args, flatten),
        "relu": ((), {}, relu),
        "relu_": ((), {}, relu_),
        "clamp": (*clamp_args, clamp),
        "clip": (*clamp_args, clamp),
        "clamp_": (*clamp_args, clamp_),
        "clip_": (*clamp_args, clamp_),
        "contiguous": (("memory_format",), {"memory_format": None}, contiguous),
        "size": (("dim",), {"dim": None}, size),
        "dim": ((), {}, size),
        "add": (("other", "alpha"), {"alpha": 1}, add),
        "add_": (("other", "alpha"), {"alpha": 1}, add_),
        "mean": (
            ("dim", "keepdim", "dtype"),
            {"dim": None, "keepdim": False, "dtype": None},
            mean,
        ),
    }


def _record(gm: Any, inputs: tuple[Any, ...]) -> dict[str, tuple[str, Any]]:
    """Every node's shape (tensors) or value (numbers, tuples of them) on
    the example inputs."""
    import torch

    seen: dict[str, tuple[str, Any]] = {}

    class Recorder(torch.fx.Interpreter):
        def run_node(self, n: Any) -> Any:
            v = super().run_node(n)
            if isinstance(v, torch.Tensor):
                seen[n.name] = ("tensor", tuple(int(d) for d in v.shape))
            elif isinstance(v, int) or (
                isinstance(v, tuple) and all(isinstance(d, int) for d in v)
            ):
                seen[n.name] = ("value", tuple(v) if isinstance(v, tuple) else int(v))
            else:
                seen[n.name] = ("other", type(v).__name__)
            return v

    Recorder(gm).run(*inputs)
    return seen


def from_fx(model: Any, inputs: tuple[Any, ...], export_failure: str) -> FGraph:
    """The float graph of ``model`` traced with ``torch.fx`` on ``inputs``
    (torch tensors, source layout); ``export_failure`` says why torch.export
    could not capture it, for the messages. The caller has put the model in
    eval mode."""
    import torch

    def both(fx_failure: str) -> UnsupportedModelError:
        return UnsupportedModelError(
            f"neither torch.export nor torch.fx could capture the model: torch.export "
            f"({export_failure}); torch.fx ({fx_failure})"
        )

    try:
        gm = torch.fx.symbolic_trace(model)
    except Exception as err:
        raise both(brief(err)) from err
    placeholders = [str(n.name) for n in gm.graph.nodes if n.op == "placeholder"]
    if len(placeholders) != len(inputs):
        raise both(
            f"forward takes {len(placeholders)} inputs ({', '.join(placeholders)}), the "
            f"calibration data gives {len(inputs)}"
        )
    try:
        seen = _record(gm, inputs)
    except Exception as err:
        raise both(f"the traced graph fails on the example batch: {brief(err)}") from err
    c = _Converter(gm, seen)
    try:
        c.run()
    except UnsupportedModelError as err:
        raise UnsupportedModelError(
            f"{err} (captured with torch.fx because torch.export failed: {export_failure})"
        ) from None
    shapes: dict[str, tuple[int | None, ...]] = {
        name: tuple(int(d) for d in x.shape) for name, x in zip(c.inputs, inputs)
    }
    return FGraph(c.nodes, c.inputs, c.outputs, shapes, "torch")
