"""The prepared float graph run by PyTorch (when it is installed): the same
computation as the NumPy executor in ``_prepare``, several times faster on
convolutions, for calibration and the report. Tensors are NCHW inside (the
order torch's kernels take), handed out NHWC as the NumPy executor does."""

from __future__ import annotations

import importlib.util
import sys
from typing import Any

import numpy as np

from ._prepare import PGraph, PNode

__all__ = ["TorchExecutor", "available"]


def available() -> bool:
    return "torch" in sys.modules or importlib.util.find_spec("torch") is not None


class TorchExecutor:
    def __init__(self, pg: PGraph):
        import torch

        self.torch = torch
        self.F = torch.nn.functional
        self.pg = pg
        self.params: dict[str, tuple[Any, ...]] = {}
        for node in pg.nodes:
            a = node.attrs
            if node.op == "conv2d":  # O H W I -> O I H W
                # O H W I is OIHW in channels-last memory: what oneDNN's fast
                # NHWC convolutions take, as the NHWC activations are
                w = torch.from_numpy(np.array(a["w"], np.float32)).permute(0, 3, 1, 2)
                self.params[node.output] = (w, torch.from_numpy(np.array(a["b"], np.float32)))
            elif node.op == "conv_transpose2d":  # O H W I -> I O H W
                w = torch.from_numpy(np.array(a["w"].transpose(3, 0, 1, 2), np.float32, order="C"))
                self.params[node.output] = (w, torch.from_numpy(np.array(a["b"], np.float32)))
            elif node.op == "linear":
                w = torch.from_numpy(np.array(a["w"], np.float32))
                self.params[node.output] = (w, torch.from_numpy(np.array(a["b"], np.float32)))

    def _node(self, node: PNode, ins: list[Any]) -> Any:
        torch, F, a = self.torch, self.F, node.attrs
        x = ins[0]
        if node.op == "conv2d":
            w, b = self.params[node.output]
            top, bottom, left, right = a["padding"]
            if top == bottom and left == right:  # torch pads evenly itself, without a copy
                y = F.conv2d(x, w, b, a["stride"], (top, left))
            else:
                y = F.conv2d(F.pad(x, (left, right, top, bottom)), w, b, a["stride"])
        elif node.op == "conv_transpose2d":
            w, b = self.params[node.output]
            y = F.conv_transpose2d(x, w, b, a["stride"])
            top, bottom, left, right = a["crop"]
            y = y[:, :, top : y.shape[2] - bottom, left : y.shape[3] - right]
        elif node.op == "linear":
            w, b = self.params[node.output]
            y = F.linear(x, w, b)
        elif node.op == "max_pool2d":
            top, bottom, left, right = a["padding"]
            if any((top, bottom, left, right)):
                x = F.pad(x, (left, right, top, bottom), value=-float("inf"))
            y = F.max_pool2d(x, a["kernel"], a["stride"])
        elif node.op == "avg_pool2d":
            top, bottom, left, right = a["padding"]
            pads = (left, right, top, bottom)
            total = F.avg_pool2d(F.pad(x, pads), a["kernel"], a["stride"])
            if any(pads):  # the average over the input positions only
                ones = torch.ones((1, 1, *x.shape[2:]), dtype=x.dtype)
                y = total / F.avg_pool2d(F.pad(ones, pads), a["kernel"], a["stride"])
            else:
                y = total
        elif node.op == "concat":
            axis = {3: 1, 1: 2, 2: 3}[a["axis"]] if node.output in self.pg.nchw else a["axis"]
            y = torch.cat(ins, axis)
        elif node.op == "add":
            y = ins[0] + ins[1]
        elif node.op == "reshape":  # our flatten takes H, W, C order
            y = x.permute(0, 2, 3, 1).reshape(x.shape[0], -1) if x.dim() == 4 else x
        else:  # pragma: no cover - prepare() emits only the kinds above
            raise AssertionError(node.op)
        lo, hi = node.clamp
        if lo == 0.0 and hi is None:
            y = F.relu_(y)  # y is this op's own fresh output
        elif lo is not None or hi is not None:
            y = torch.clamp_(y, lo, hi)
        return y

    def _values(self, inputs: dict[str, np.ndarray]) -> dict[str, Any]:
        # torch's threads follow lowp's setting: its OpenMP workers spin, and
        # on a machine whose cores are shared two of them can be slower than one
        import lowp

        threads, before = lowp.get_num_threads(), self.torch.get_num_threads()
        if threads != before:
            self.torch.set_num_threads(threads)
        try:
            return self._compute(inputs)
        finally:
            if threads != before:
                self.torch.set_num_threads(before)

    def _compute(self, inputs: dict[str, np.ndarray]) -> dict[str, Any]:
        torch = self.torch
        values: dict[str, Any] = {}
        for name, arr in inputs.items():
            t = torch.from_numpy(np.require(arr, np.float32, ["C", "W"]))
            values[name] = t.permute(0, 3, 1, 2) if name in self.pg.nchw else t
        for node in self.pg.nodes:
            values[node.output] = self._node(node, [values[i] for i in node.inputs])
        return values

    def run(self, inputs: dict[str, np.ndarray], keep: bool = True) -> dict[str, np.ndarray]:
        """Like ``_prepare.run_float``: NHWC float32 arrays in and out."""
        with self.torch.inference_mode():
            values = self._values(inputs)
            out = {}
            for name in values if keep else self.pg.outputs:
                t = values[name]
                if name in self.pg.nchw:
                    t = t.permute(0, 2, 3, 1)
                out[name] = np.ascontiguousarray(t.numpy(), dtype=np.float32)
        return out

    def values(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Every tensor in whatever layout it was computed in (for statistics
        that do not depend on the layout, such as a range), without copies."""
        with self.torch.inference_mode():
            return {k: v.numpy() for k, v in self._values(inputs).items()}
