"""``qm.save_onnx``: the quantized model as ONNX QDQ (QuantizeLinear /
DequantizeLinear pairs around float operators), NCHW as the source, for ONNX
Runtime, which fuses the pairs into its integer operators. The weights, bias
and every activation's scale and zero point are lowp's; ONNX Runtime's
requantization is its own (float), so its integers can differ from lowp's
in the last step."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from ._model import QuantizedModel
    from ._prepare import PNode

__all__ = ["onnx_model", "save_onnx"]

_NHWC_TO_NCHW_AXIS = {0: 0, 1: 2, 2: 3, 3: 1}


class _Writer:
    def __init__(self, qm: QuantizedModel):
        import onnx
        from onnx import helper, numpy_helper

        self.onnx, self.helper, self.nh = onnx, helper, numpy_helper
        self.qm = qm
        self.nodes: list[Any] = []
        self.inits: list[Any] = []
        self.dtype = np.int8 if qm.scheme.name == "int8" else np.uint8
        self.count = 0

    def name(self, base: str) -> str:
        self.count += 1
        return f"{base}__{self.count}"

    def init(self, base: str, arr: np.ndarray) -> str:
        n = self.name(base)
        self.inits.append(self.nh.from_array(np.array(arr, copy=True, order="C"), n))
        return n

    def node(self, op: str, inputs: list[str], base: str, **attrs: Any) -> str:
        out = self.name(base)
        self.nodes.append(self.helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

    def qdq(self, x: str, tensor: str) -> str:
        """``x`` through QuantizeLinear / DequantizeLinear with ``tensor``'s parameters."""
        q = self.qm.quant[tensor]
        s = self.init(tensor + "/scale", np.array(q.scale, np.float32))
        z = self.init(tensor + "/zero_point", np.array(q.zero_point, self.dtype))
        qx = self.node("QuantizeLinear", [x, s, z], tensor + "/q")
        return self.node("DequantizeLinear", [qx, s, z], tensor + "/dq")

    def weights(self, node: PNode, layout: str) -> tuple[str, str]:
        """Dequantized weights (source layout) and bias of a conv / linear node."""
        w, b = self.qm.layer_constants(node.output)
        assert w.data is not None and w.scale is not None and w.zero_point is not None
        assert b.data is not None and b.scale is not None
        data = np.asarray(w.data)
        if layout == "conv":  # O H W I -> O I H W
            data, axis = data.transpose(0, 3, 1, 2), 0
        elif layout == "deconv":  # O H W I -> I O H W
            data, axis = data.transpose(3, 0, 1, 2), 1
        else:  # linear [N, K]; columns back to the source's order
            perm = node.attrs.get("perm")
            if perm is not None:
                data = data[:, perm]
            axis = 0
        per_channel = w.scale.size > 1
        ws = self.init(node.output + "/w_scale", w.scale if per_channel else w.scale.reshape(()))
        wz = self.init(
            node.output + "/w_zero_point",
            (w.zero_point if per_channel else w.zero_point.reshape(())).astype(data.dtype),
        )
        wq = self.init(node.output + "/w", data)
        kw = {"axis": axis} if per_channel else {}
        wd = self.node("DequantizeLinear", [wq, ws, wz], node.output + "/w_dq", **kw)
        bs = self.init(node.output + "/b_scale", b.scale.astype(np.float32))
        bz = self.init(node.output + "/b_zero_point", np.zeros(b.scale.size, np.int32))
        bq = self.init(node.output + "/b", np.asarray(b.data, np.int32))
        bd = self.node("DequantizeLinear", [bq, bs, bz], node.output + "/b_dq", axis=0)
        return wd, bd

    def clamp(self, node: PNode, y: str) -> str:
        lo, hi = node.clamp
        if lo is None and hi is None:
            return y
        if lo == 0.0 and hi is None:
            return self.node("Relu", [y], node.output + "/relu")
        low = np.array(-np.inf if lo is None else lo, np.float32)
        high = np.array(np.inf if hi is None else hi, np.float32)
        args = [y, self.init(node.output + "/lo", low), self.init(node.output + "/hi", high)]
        return self.node("Clip", args, node.output + "/clip")

    def op(self, node: PNode, ins: list[str]) -> str:
        a = node.attrs
        if node.op in ("conv2d", "conv_transpose2d"):
            conv = node.op == "conv2d"
            wd, bd = self.weights(node, "conv" if conv else "deconv")
            kh, kw = a["w"].shape[1:3]
            if conv:
                top, bottom, left, right = a["padding"]
            else:
                top, bottom, left, right = a["crop"]
            y = self.node(
                "Conv" if conv else "ConvTranspose",
                [ins[0], wd, bd],
                node.output,
                kernel_shape=[kh, kw],
                strides=list(a["stride"]),
                pads=[top, left, bottom, right],
            )
            return self.clamp(node, y)
        if node.op == "linear":
            wd, bd = self.weights(node, "linear")
            y = self.node("Gemm", [ins[0], wd, bd], node.output, transB=1)
            return self.clamp(node, y)
        if node.op == "add":
            return self.clamp(node, self.node("Add", ins, node.output))
        if node.op in ("max_pool2d", "avg_pool2d"):
            top, bottom, left, right = a["padding"]
            kind = "MaxPool" if node.op == "max_pool2d" else "AveragePool"
            return self.node(
                kind,
                ins,
                node.output,
                kernel_shape=list(a["kernel"]),
                strides=list(a["stride"]),
                pads=[top, left, bottom, right],
            )
        if node.op == "concat":
            axis = a["axis"]
            if node.output in self.qm.prepared.nchw:
                axis = _NHWC_TO_NCHW_AXIS[axis]
            return self.node("Concat", ins, node.output, axis=axis)
        if node.op == "reshape":
            return self.node("Flatten", ins, node.output, axis=1)
        raise AssertionError(node.op)  # pragma: no cover


def onnx_model(qm: QuantizedModel) -> Any:
    """The QDQ ``onnx.ModelProto`` of ``qm`` (needs the onnx package)."""
    try:
        import onnx  # noqa: F401
    except ImportError:
        raise ImportError('save_onnx needs onnx: pip install "lowp[onnx]"') from None
    w = _Writer(qm)
    h, pg = w.helper, qm.prepared
    value: dict[str, str] = {}

    def source_shape(name: str) -> list[Any]:
        shape: list[Any] = list(pg.shapes[name])
        if name in pg.nchw:
            shape = [shape[0], shape[3], shape[1], shape[2]]
        return ["batch", *shape[1:]]

    graph_inputs = []
    for name in pg.inputs:
        graph_inputs.append(h.make_tensor_value_info(name, 1, source_shape(name)))
        value[name] = w.qdq(name, name)
    for node in pg.nodes:
        y = w.op(node, [value[i] for i in node.inputs])
        value[node.output] = w.qdq(y, node.output)
    outputs = []
    for o in pg.outputs:
        w.nodes.append(h.make_node("Identity", [value[o]], [o], name=o + "/out"))
        outputs.append(h.make_tensor_value_info(o, 1, source_shape(o)))
    graph = h.make_graph(w.nodes, "lowp_qdq", graph_inputs, outputs, w.inits)
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", 17)], producer_name="lowp")
    model.ir_version = 8
    w.onnx.checker.check_model(model)
    return model


def save_onnx(qm: QuantizedModel, path: Any) -> None:
    """Write :func:`onnx_model` to ``path``; nothing is written unless it all succeeds."""
    from lowp.tflite._write import write_atomic

    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
    write_atomic(path, onnx_model(qm).SerializeToString())
